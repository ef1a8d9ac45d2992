import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import { normalizeInbound } from '@trellis/firewall';
import { ipv4CidrWithin, OVERLAY_PREFIX, type ServerMessage } from '@trellis/proto';
import {
  FUZZ_CASES,
  FUZZ_SEED,
  hasControlCharacter,
  jsonMutations,
} from '../../../packages/proto/test/support/json-fuzz';
import { desiredConfigFromNetmap } from '../src/agent/desired-config';
import { decodeServerMessage } from '../src/control/control-socket';
import { NetmapTracker, rulesOf } from '../src/control/netmap-tracker';
import { diffWireGuardConfig } from '../src/wireguard/config-diff';
import { serializeUapiSet } from '../src/wireguard/uapi';

const me = generateKeyPair();
const peerKey = generateKeyPair().publicKey;
const relayId = randomUUID();
const peer = {
  id: randomUUID(),
  name: 'laptop',
  dnsName: 'laptop.acme.trellis.test',
  publicKey: peerKey,
  address: '100.64.0.2',
  allowedIps: ['100.64.0.2/32'],
  endpoints: ['192.168.1.20:51820', '203.0.113.5:40000'],
  candidates: [
    { endpoint: '192.168.1.20:51820', kind: 'lan', priority: 300 },
    { endpoint: '203.0.113.5:40000', kind: 'reflexive', priority: 200 },
  ],
  online: true,
};
const self = {
  id: randomUUID(),
  name: 'desktop',
  dnsName: 'desktop.acme.trellis.test',
  address: '100.64.0.1',
  accountName: 'acme',
  overlayPrefix: OVERLAY_PREFIX,
  reflectors: [{ publicKey: generateKeyPair().publicKey, endpoint: '198.51.100.1:3478' }],
  reflexive: ['203.0.113.9:51820'],
  mappingType: 'endpoint-independent',
  relays: [
    {
      id: relayId,
      name: 'relay-1',
      address: '198.51.100.7',
      tcp: { url: 'wss://relay.example:443', fingerprint: Array(32).fill('AB').join(':') },
    },
  ],
};
const snapshot = {
  type: 'netmap',
  serial: 7,
  self,
  peers: [peer],
  access: [{ peers: [peer.id], in: [{}], out: [{ proto: 'tcp', ports: [[22, 22]] }] }],
};
const delta = { type: 'delta', serial: 8, upsert: [peer], remove: [randomUUID()], self };
const others = [
  {
    type: 'challenge',
    brokerNonce: Buffer.alloc(32, 1).toString('base64'),
    brokerProof: Buffer.alloc(32, 2).toString('base64'),
  },
  { type: 'pong', t: 1, serverTime: 2 },
  {
    type: 'punch',
    attemptId: 'punch:1',
    peerId: peer.id,
    peerPublicKey: peerKey,
    candidates: peer.candidates,
    startAt: 1_700_000_000_000,
    deadlineMs: 800,
    leader: true,
  },
  {
    type: 'relay',
    peerId: peer.id,
    peerPublicKey: peerKey,
    allocationId: randomUUID(),
    relayId,
    relayName: 'relay-1',
    endpoint: '198.51.100.7:40001',
    tcp: self.relays[0]!.tcp,
  },
  { type: 'relay-release', peerId: peer.id, allocationId: randomUUID() },
];

/** What an accepted netmap must satisfy before any of it reaches WireGuard or the routes. */
function checkApplicable(tracker: NetmapTracker, msg: ServerMessage): void {
  const netmap =
    msg.type === 'netmap'
      ? tracker.applySnapshot(msg)
      : msg.type === 'delta'
        ? (() => {
            tracker.applySnapshot({
              type: 'netmap',
              serial: msg.serial - 1,
              self: self as never,
              peers: [],
              access: [],
            });
            const r = tracker.applyDelta(msg);
            if (!r.ok) throw new Error(r.reason);
            return r.netmap;
          })()
        : null;
  if (!netmap) return;
  // Plain checks, not expect(): they run for every accepted case.
  if (netmap.self.overlayPrefix !== OVERLAY_PREFIX) throw new Error(`accepted ${netmap.self.overlayPrefix}`);
  for (const p of netmap.peers) {
    for (const cidr of p.allowedIps) {
      if (!ipv4CidrWithin(cidr, OVERLAY_PREFIX)) throw new Error(`accepted allowed IP ${cidr}`);
    }
  }
  // Whatever is accepted can be written: one public_key line per peer, nothing more.
  const desired = desiredConfigFromNetmap(netmap, me.privateKey, 51820);
  const text = serializeUapiSet(diffWireGuardConfig(desired, { privateKey: null, listenPort: 0, peers: [] }));
  const keys = text.match(/^public_key=/gm)?.length ?? 0;
  if (keys !== desired.peers.length) throw new Error(`${keys} peers written for ${desired.peers.length}`);
  // ... and the firewall takes what was accepted (it throws on anything it could not write safely).
  normalizeInbound({
    interfaceName: 'trellis0',
    selfAddress: netmap.self.address,
    peers: netmap.peers.map((p) => ({ address: p.address, allow: rulesOf(netmap, p.id).in })),
  });
}

function fuzz(valid: unknown[], cases: number) {
  let accepted = 0;
  const tracker = new NetmapTracker();
  valid.forEach((sample, n) => {
    for (const text of jsonMutations(sample, Math.ceil(cases / valid.length), FUZZ_SEED + n)) {
      const decoded = decodeServerMessage(text);
      if (!decoded.ok) {
        if (decoded.reason.length > 1_000) throw new Error(`a ${decoded.reason.length}-character reason`);
        continue;
      }
      accepted++;
      if (hasControlCharacter(decoded.msg)) throw new Error(`accepted a control character: ${text}`);
      checkApplicable(tracker, decoded.msg);
    }
  });
  return accepted;
}

describe(`broker → agent frames under fuzzing (${FUZZ_CASES} cases per target, seed ${FUZZ_SEED})`, () => {
  it('the valid samples are accepted (so the mutations start from something real)', () => {
    for (const m of [snapshot, delta, ...others])
      expect(decodeServerMessage(JSON.stringify(m)).ok).toBe(true);
  });

  it('netmap and delta: never throws; whatever is accepted stays in the overlay and can be written', () => {
    const accepted = fuzz([snapshot, delta], FUZZ_CASES);
    // Some mutations keep the frame valid (an element dropped, a peer repeated): those are checked too.
    expect(accepted).toBeGreaterThan(0);
  });

  it('challenge, pong, punch, relay, relay-release: never throws, nothing with a control character', () => {
    expect(fuzz(others, FUZZ_CASES)).toBeGreaterThan(0);
  });
});
