import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import { ClientMessage, PROTOCOL_VERSION, RelayClientMessage } from '@trellis/proto';
import type { ZodType } from 'zod';
import {
  FUZZ_CASES,
  FUZZ_SEED,
  hasControlCharacter,
  jsonMutations,
} from '../../../../packages/proto/test/support/json-fuzz';
import { parseAdminLine } from '../../src/admin/admin-socket-server';
import { parseFrame } from '../../src/control/parse-frame';

const key = generateKeyPair().publicKey;
const nonce = Buffer.alloc(32, 3).toString('base64');
const peerId = randomUUID();

const deviceFrames = [
  {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    deviceId: randomUUID(),
    publicKey: key,
    clientNonce: nonce,
    lastSerial: 4,
  },
  { type: 'auth', proof: nonce },
  { type: 'endpoints', endpoints: ['192.168.1.2:51820', '[2001:db8::1]:51820'] },
  { type: 'ping', t: 12 },
  {
    type: 'path',
    peerId,
    attemptId: 'punch:3',
    result: 'direct',
    endpoint: '203.0.113.4:5000',
    kind: 'reflexive',
    elapsedMs: 120,
  },
  { type: 'want-path', peerId, relayed: true },
  { type: 'netinfo', portMapped: '203.0.113.4:6000', relayRttMs: { [randomUUID()]: 12.5 } },
];
const relayFrames = [
  {
    type: 'relay-hello',
    protocolVersion: PROTOCOL_VERSION,
    token: `trl_${'a'.repeat(43)}`,
    name: 'relay-1',
    publicAddress: '198.51.100.7',
    ports: { first: 40000, last: 40100 },
    version: '0.1.0',
    held: 0,
  },
  { type: 'allocated', allocationId: randomUUID(), port: 40001 },
  { type: 'allocate-failed', allocationId: randomUUID(), reason: 'no ports left' },
  { type: 'expired', allocationId: randomUUID() },
  { type: 'load', allocations: 3, packetsPerSecond: 10, bytesPerSecond: 1000, dropsPerSecond: 0 },
  { type: 'observed', publicKey: key, endpoint: '203.0.113.9:51820' },
];
const adminLines = [
  { op: 'accounts.create', name: 'acme', ownerEmail: 'a@example.com', password: 'secret' },
  {
    op: 'setupKeys.create',
    account: 'acme',
    name: 'laptops',
    reusable: true,
    expiresInSeconds: 60,
    usageLimit: 3,
  },
  { op: 'devices.remove', account: 'acme', device: 'laptop' },
  { op: 'relayTokens.create', name: 'home' },
  { op: 'instances.list' },
];

/** Runs `parse` over mutations of every sample; returns how many were accepted. */
function fuzz(samples: unknown[], parse: (text: string) => { ok: boolean; value?: unknown }): number {
  let accepted = 0;
  samples.forEach((sample, n) => {
    for (const text of jsonMutations(sample, Math.ceil(FUZZ_CASES / samples.length), FUZZ_SEED + n)) {
      const r = parse(text);
      if (!r.ok) continue;
      accepted++;
      if (hasControlCharacter(r.value))
        throw new Error(`accepted a control character: ${text.slice(0, 200)}`);
    }
  });
  return accepted;
}

const frame = (schema: ZodType<unknown>) => (text: string) => {
  const r = parseFrame(schema, text);
  return r.ok ? { ok: true, value: r.msg } : { ok: false };
};

describe(`what the broker reads, under fuzzing (${FUZZ_CASES} cases per target, seed ${FUZZ_SEED})`, () => {
  it('the valid samples are accepted', () => {
    for (const f of deviceFrames)
      expect(parseFrame(ClientMessage, JSON.stringify(f))).toMatchObject({ ok: true });
    for (const f of relayFrames)
      expect(parseFrame(RelayClientMessage, JSON.stringify(f))).toMatchObject({ ok: true });
    for (const l of adminLines) expect(parseAdminLine(JSON.stringify(l))).toMatchObject({ ok: true });
  });

  it('device control frames: never throws, nothing with a control character accepted', () => {
    expect(fuzz(deviceFrames, frame(ClientMessage))).toBeGreaterThan(0);
  });

  it('relay control frames: never throws, nothing with a control character accepted', () => {
    expect(fuzz(relayFrames, frame(RelayClientMessage))).toBeGreaterThan(0);
  });

  it('admin socket lines: never throws, every refusal a 400 with a reason', () => {
    const accepted = fuzz(adminLines, (text) => {
      const r = parseAdminLine(text);
      if (r.ok) return { ok: true, value: r.data };
      if (r.status !== 400 || r.error.length === 0) throw new Error(`refused with ${r.status}: ${r.error}`);
      return { ok: false };
    });
    expect(accepted).toBeGreaterThan(0);
  });
});
