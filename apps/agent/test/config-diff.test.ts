import { generateKeyPair } from '@trellis/crypto';
import type { NetmapPeer, NetmapSelf } from '@trellis/proto';
import { desiredConfigFromNetmap } from '../src/agent/desired-config';
import {
  type DesiredConfig,
  diffWireGuardConfig,
  PERSISTENT_KEEPALIVE_SECONDS,
} from '../src/wireguard/config-diff';
import { clampPrivateKey } from '../src/wireguard/keys';
import type { WgConfigUpdate, WgDeviceState } from '../src/wireguard/types';

/** Applies an update to a device state the way WireGuard would: the test's model of the device. */
function applyToState(state: WgDeviceState, u: WgConfigUpdate): WgDeviceState {
  const next: WgDeviceState = structuredClone(state);
  if (u.privateKey !== undefined) next.privateKey = u.privateKey;
  if (u.listenPort !== undefined) next.listenPort = u.listenPort;
  for (const p of u.peers) {
    const i = next.peers.findIndex((x) => x.publicKey === p.publicKey);
    if (p.remove) {
      if (i >= 0) next.peers.splice(i, 1);
      continue;
    }
    let peer = next.peers[i];
    if (!peer) {
      peer = {
        publicKey: p.publicKey,
        endpoint: null,
        allowedIps: [],
        persistentKeepalive: 0,
        lastHandshakeSec: 0,
        rxBytes: 0,
        txBytes: 0,
      };
      next.peers.push(peer);
    }
    if (p.endpoint !== undefined) peer.endpoint = p.endpoint;
    if (p.persistentKeepalive !== undefined) peer.persistentKeepalive = p.persistentKeepalive;
    if (p.allowedIps !== undefined) peer.allowedIps = [...p.allowedIps];
  }
  return next;
}

describe('WireGuardConfigDiff', () => {
  const self = generateKeyPair();
  const [a, b, c, r] = [
    generateKeyPair().publicKey,
    generateKeyPair().publicKey,
    generateKeyPair().publicKey,
    generateKeyPair().publicKey,
  ];
  const empty: WgDeviceState = { privateKey: null, listenPort: 0, peers: [] };
  // Mesh peers a and b (endpoints owned by the path logic) and reflector r (endpoint owned by the config).
  const desired: DesiredConfig = {
    privateKey: self.privateKey,
    listenPort: 51820,
    peers: [
      { publicKey: a!, allowedIps: ['100.64.0.2/32'] },
      { publicKey: b!, allowedIps: ['100.64.0.3'] },
      { publicKey: r!, allowedIps: [], endpoint: '198.51.100.10:41641' },
    ],
  };

  it('configures a fresh device completely, setting only the endpoints the config owns', () => {
    const u = diffWireGuardConfig(desired, empty);
    expect(u.privateKey).toBe(clampPrivateKey(self.privateKey));
    expect(u.listenPort).toBe(51820);
    expect(u.peers).toEqual([
      { publicKey: a, allowedIps: ['100.64.0.2/32'] },
      { publicKey: b, allowedIps: ['100.64.0.3/32'] },
      {
        publicKey: r,
        endpoint: '198.51.100.10:41641',
        allowedIps: [],
        persistentKeepalive: PERSISTENT_KEEPALIVE_SECONDS,
      },
    ]);
  });

  it('is idempotent: applying the same netmap twice yields no operations', () => {
    const once = applyToState(empty, diffWireGuardConfig(desired, empty));
    const again = diffWireGuardConfig(desired, once);
    expect(again).toEqual({ peers: [] });
  });

  it('removes peers no longer wanted, adds new ones, changes only what changed', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty));
    const next: DesiredConfig = {
      ...desired,
      peers: [
        { publicKey: a!, allowedIps: ['100.64.0.2/32', '10.9.0.0/24'] },
        { publicKey: c!, allowedIps: ['100.64.0.4/32'] },
        { publicKey: r!, allowedIps: [], endpoint: '198.51.100.10:41641' },
      ],
    };
    const u = diffWireGuardConfig(next, state);
    expect(u.privateKey).toBeUndefined();
    expect(u.listenPort).toBeUndefined();
    expect(u.peers).toEqual([
      { publicKey: b, remove: true },
      { publicKey: a, allowedIps: ['10.9.0.0/24', '100.64.0.2/32'] },
      { publicKey: c, allowedIps: ['100.64.0.4/32'] },
    ]);
    expect(diffWireGuardConfig(next, applyToState(state, u))).toEqual({ peers: [] });
  });

  it('puts a config-owned endpoint back when it moved, and changes nothing while it holds', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty));
    state.peers[2]!.endpoint = '203.0.113.9:40000';
    expect(diffWireGuardConfig(desired, state).peers).toEqual([
      { publicKey: r, endpoint: '198.51.100.10:41641' },
    ]);
    const moved = {
      ...desired,
      peers: [...desired.peers.slice(0, 2), { ...desired.peers[2]!, endpoint: '198.51.100.11:41641' }],
    };
    expect(
      diffWireGuardConfig(moved, applyToState(empty, diffWireGuardConfig(desired, empty))).peers,
    ).toEqual([{ publicKey: r, endpoint: '198.51.100.11:41641' }]);
  });

  it('never touches a path-owned endpoint or keepalive (the path logic turns it on only while a path is in use)', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty));
    state.peers[1]!.endpoint = '198.51.100.7:51820'; // the path logic (or roaming) set it, dormant
    expect(state.peers[1]!.persistentKeepalive).toBe(0);
    expect(diffWireGuardConfig(desired, state)).toEqual({ peers: [] });
    // A path in use: the path logic turned keepalive on; the diff leaves it on.
    state.peers[1]!.persistentKeepalive = PERSISTENT_KEEPALIVE_SECONDS;
    expect(diffWireGuardConfig(desired, state)).toEqual({ peers: [] });
    // The config-owned endpoint keeps its keepalive: put back when something turned it off.
    state.peers[2]!.persistentKeepalive = 0;
    expect(diffWireGuardConfig(desired, state).peers).toEqual([
      { publicKey: r, persistentKeepalive: PERSISTENT_KEEPALIVE_SECONDS },
    ]);
  });

  it('changes the private key and listen port only when they differ', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty));
    const rotated = generateKeyPair();
    const u = diffWireGuardConfig({ ...desired, privateKey: rotated.privateKey, listenPort: 51821 }, state);
    expect(u).toEqual({ privateKey: clampPrivateKey(rotated.privateKey), listenPort: 51821, peers: [] });
  });

  it('compares private keys in clamped form, as WireGuard reports them', () => {
    const state = applyToState(empty, diffWireGuardConfig(desired, empty));
    expect(state.privateKey).toBe(clampPrivateKey(self.privateKey));
    expect(diffWireGuardConfig(desired, state).privateKey).toBeUndefined();
  });
});

describe('desiredConfigFromNetmap', () => {
  const keys = generateKeyPair();
  it("owns the reflectors' endpoints and leaves the mesh peers' to the path logic", () => {
    const peer: NetmapPeer = {
      id: '6f1c1b8e-3c1d-4b7a-9a55-2f0d8a1b2c3d',
      name: 'b',
      dnsName: 'b.acme.trellis.internal',
      publicKey: generateKeyPair().publicKey,
      address: '100.64.0.3',
      allowedIps: [],
      endpoints: ['192.0.2.1:51820'],
      online: true,
    };
    const reflector = { publicKey: generateKeyPair().publicKey, endpoint: '198.51.100.10:41641' };
    const selfEntry: NetmapSelf = {
      id: '0c5d6e7f-1a2b-4c3d-8e9f-0a1b2c3d4e5f',
      name: 'a',
      dnsName: 'a.acme.trellis.internal',
      address: '100.64.0.2',
      accountName: 'acme',
      overlayPrefix: '100.64.0.0/10',
      reflectors: [reflector],
    };
    const netmap = { serial: 1, self: selfEntry, peers: [peer], access: new Map(), virtual: [] };
    expect(desiredConfigFromNetmap(netmap, keys.privateKey, 51820)).toEqual({
      privateKey: keys.privateKey,
      listenPort: 51820,
      peers: [
        { publicKey: peer.publicKey, allowedIps: ['100.64.0.3/32'] },
        { publicKey: reflector.publicKey, allowedIps: [], endpoint: '198.51.100.10:41641' },
      ],
    });
  });
});
