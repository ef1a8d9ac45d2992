import {
  DeviceAuthenticator,
  generateKeyPair,
  type KeyPair,
  newNonce,
  signKeyRotation,
  verifyKeyRotation,
} from '@trellis/crypto';
import { API_PATHS, CloseCode, type DeviceInfo, PROTOCOL_VERSION } from '@trellis/proto';
import { executeAdmin } from '../../src/admin/admin-operations';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { startTestBroker } from '../support/fixture';
import { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

describe.each(BACKENDS)('device key changes on %s', (kind) => {
  let backend: Backend;
  let t: Awaited<ReturnType<typeof startTestBroker>>;
  const devices: TestDevice[] = [];
  const track = (d: TestDevice) => {
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend);
  });
  afterEach(() => {
    for (const d of devices.splice(0)) d.close();
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  /** Two enrolled, connected devices that see each other online. */
  async function pair(prefix: string): Promise<[TestDevice, TestDevice]> {
    const a = track(t.device());
    const b = track(t.device());
    await a.enroll(t.setupKey, { hostname: `${prefix}-a` });
    await b.enroll(t.setupKey, { hostname: `${prefix}-b` });
    await a.connect();
    await b.connect();
    await b.waitForPeers((p) => p.get(a.id)?.online === true);
    return [a, b];
  }

  /** The same enrolled device under another key pair (what the agent becomes after a key change). */
  const withKeys = (d: TestDevice, keys: KeyPair) => {
    const moved = track(new TestDevice(d.baseUrl, d.certFile, keys));
    moved.enrollment = d.enrollment;
    return moved;
  };

  /** A rotate-key of `d` to `newKey`, signed by `signer` (the device's own key unless given). */
  const rotation = (d: TestDevice, newKey: string, signer: KeyPair = d.keys) => ({
    type: 'rotate-key',
    newKey,
    signature: signKeyRotation(signer.privateKey, {
      deviceId: d.id,
      address: d.enrollment!.address,
      previousKey: signer.publicKey,
      newKey,
    }),
  });

  /** A hello under the device's key: the broker's close code (authFailed for a key it does not hold). */
  async function helloRefused(d: TestDevice): Promise<number> {
    await d.open();
    d.send({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      deviceId: d.id,
      publicKey: d.keys.publicKey,
      clientNonce: Buffer.alloc(32, 7).toString('base64'),
    });
    return d.waitForClose();
  }

  async function listed(id: string): Promise<DeviceInfo> {
    const list = (await t.api('GET', API_PATHS.devices, { token: t.ownerToken })).json as DeviceInfo[];
    return list.find((d) => d.id === id)!;
  }

  it('a rotation signed by the current key replaces it; peers get the proof; the device reconnects with the new key', async () => {
    const [a, b] = await pair('rot');
    const next = generateKeyPair();
    const msg = rotation(a, next.publicKey);
    a.send(msg);
    expect(await a.waitFor((m) => m.type === 'key-rotated')).toEqual({
      type: 'key-rotated',
      newKey: next.publicKey,
    });
    await b.waitForPeers((p) => p.get(a.id)?.publicKey === next.publicKey);
    const seen = b.peers.get(a.id)!;
    expect(seen.keyChange).toEqual({
      kind: 'rotated',
      previousKey: a.keys.publicKey,
      signature: msg.signature,
    });
    // What a peer checks against its pin.
    const proof = {
      deviceId: a.id,
      address: seen.address,
      previousKey: a.keys.publicKey,
      newKey: next.publicKey,
    };
    expect(verifyKeyRotation(proof, msg.signature)).toBe(true);
    expect((await listed(a.id)).publicKey).toBe(next.publicKey);
    // The rotating connection stays up until its agent reconnects.
    expect(a.closeCode).toBeUndefined();

    // The old key no longer authenticates; the new one does, as the same device.
    a.close();
    const stale = track(new TestDevice(a.baseUrl, a.certFile, a.keys));
    stale.enrollment = a.enrollment;
    expect(await helloRefused(stale)).toBe(CloseCode.authFailed);
    const rotated = withKeys(a, next);
    const snap = await rotated.connect();
    expect(snap.self).toMatchObject({ id: a.id, address: a.enrollment!.address });
    await b.waitForPeers((p) => p.get(a.id)?.online === true);
    expect(b.peers.get(a.id)!.publicKey).toBe(next.publicKey);
  });

  it('refuses a bad signature, a key of another device, its own key and a malformed message: nothing changes', async () => {
    const [a, b] = await pair('refuse');
    const next = generateKeyPair();
    const attempts: Array<[string, unknown, number]> = [
      ['signed by another key', rotation(a, next.publicKey, generateKeyPair()), CloseCode.rotationRefused],
      [
        'the proof of a rotation to another key',
        { ...rotation(a, next.publicKey), signature: rotation(a, generateKeyPair().publicKey).signature },
        CloseCode.rotationRefused,
      ],
      ['the key of another device', rotation(a, b.keys.publicKey), CloseCode.rotationRefused],
      ['its current key', rotation(a, a.keys.publicKey), CloseCode.rotationRefused],
      ['no signature', { type: 'rotate-key', newKey: next.publicKey }, CloseCode.badMessage],
      [
        'a signature that is not one',
        { ...rotation(a, next.publicKey), signature: 'AAAA' },
        CloseCode.badMessage,
      ],
      [
        'a key that is not one',
        { ...rotation(a, next.publicKey), newKey: 'not-a-key' },
        CloseCode.badMessage,
      ],
    ];
    for (const [what, msg, code] of attempts) {
      if (a.closeCode !== undefined || !a.ws) await a.connect();
      const from = a.messages.length;
      a.send(msg);
      expect([what, await a.waitForClose()]).toEqual([what, code]);
      expect(a.messages.slice(from).some((m) => m.type === 'key-rotated')).toBe(false);
    }
    expect(t.logs.lines.some((l) => /key rotation refused: .*not signed/.test(String(l.msg)))).toBe(true);
    expect(t.logs.lines.some((l) => /key rotation refused: .*another device/.test(String(l.msg)))).toBe(true);
    // The device keeps its key and authenticates with it; its peer never heard of a change.
    expect((await listed(a.id)).publicKey).toBe(a.keys.publicKey);
    await a.connect();
    await b.waitForPeers((p) => p.get(a.id)?.online === true);
    expect(b.peers.get(a.id)).toMatchObject({ publicKey: a.keys.publicKey });
    expect(b.peers.get(a.id)!.keyChange).toBeUndefined();
    // Before authentication a rotation is a protocol error.
    const c = track(t.device());
    await c.enroll(t.setupKey, { hostname: 'refuse-c' });
    await c.open();
    c.send(rotation(c, next.publicKey));
    expect(await c.waitForClose()).toBe(CloseCode.badMessage);
  });

  it('only the connection that holds the device under its key may rotate it', async () => {
    const [a] = await pair('holder');
    const next = generateKeyPair();
    const { signature } = rotation(a, next.publicKey);
    const services = t.broker.services;
    const holder = { publicKey: a.keys.publicKey, connectionId: 'gone:connection' };
    await expect(services.devices.rotateKey(a.id, next.publicKey, signature, holder)).rejects.toThrow(
      /no longer holds the device/,
    );
    expect((await listed(a.id)).publicKey).toBe(a.keys.publicKey);
  });

  it('an admin re-key closes the old connection, peers get keyChange rekeyed, and the device re-enrolls with the new key', async () => {
    const [a, b] = await pair('rekey');
    const services = t.broker.services;
    const fresh = generateKeyPair();
    const serialBefore = b.serial;
    const before = Date.now();
    const info = (await executeAdmin(services, {
      op: 'devices.rekey',
      account: 'default',
      device: a.enrollment!.name,
      publicKey: fresh.publicKey,
    })) as DeviceInfo;
    expect(info).toMatchObject({ id: a.id, publicKey: fresh.publicKey, address: a.enrollment!.address });
    expect(await a.waitForClose()).toBe(CloseCode.keyChanged);
    await b.waitForPeers((p) => p.get(a.id)?.publicKey === fresh.publicKey);
    const change = b.peers.get(a.id)!.keyChange!;
    expect(change).toMatchObject({ kind: 'rekeyed', previousKey: a.keys.publicKey });
    expect(change.kind === 'rekeyed' && Date.parse(change.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(b.serial).toBeGreaterThan(serialBefore);

    // A key another device holds, the key it has, a device that does not exist: refused, nothing changes.
    const req = { op: 'devices.rekey', account: 'default', device: a.id } as const;
    await expect(executeAdmin(services, { ...req, publicKey: b.keys.publicKey })).rejects.toThrow(
      /belongs to another device/,
    );
    await expect(executeAdmin(services, { ...req, publicKey: fresh.publicKey })).rejects.toThrow(
      /has this key/,
    );
    await expect(
      executeAdmin(services, { ...req, device: 'no-such-device', publicKey: generateKeyPair().publicKey }),
    ).rejects.toThrow(/no device/);
    expect((await listed(a.id)).publicKey).toBe(fresh.publicKey);

    // The old key is refused; the new one enrolls (with proof) as the same device, and connects.
    expect(await helloRefused(a)).toBe(CloseCode.authFailed);
    const replacement = track(new TestDevice(a.baseUrl, a.certFile, fresh));
    const without = await replacement.postEnroll(t.setupKey, { hostname: 'rekey-a', proof: null });
    expect(without.status).toBe(401);
    const again = await replacement.enroll(t.setupKey, { hostname: 'rekey-a' });
    expect(again).toMatchObject({ deviceId: a.id, name: a.enrollment!.name, address: a.enrollment!.address });
    await replacement.connect();
    await b.waitForPeers((p) => p.get(a.id)?.online === true && p.get(a.id)?.publicKey === fresh.publicKey);
  });

  it('a key changed between hello and auth: the proof under the old key does not bring the device online', async () => {
    const a = track(t.device());
    await a.enroll(t.setupKey, { hostname: 'midway' });
    await a.open();
    const clientNonce = newNonce();
    a.send({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      deviceId: a.id,
      publicKey: a.keys.publicKey,
      clientNonce,
    });
    const challenge = await a.waitFor((m) => m.type === 'challenge');
    if (challenge.type !== 'challenge') throw new Error('no challenge');
    const fresh = generateKeyPair();
    await executeAdmin(t.broker.services, {
      op: 'devices.rekey',
      account: 'default',
      device: a.id,
      publicKey: fresh.publicKey,
    });
    const auth = new DeviceAuthenticator(a.keys.privateKey, a.keys.publicKey, a.enrollment!.brokerPublicKey);
    a.send({ type: 'auth', proof: auth.deviceProof(clientNonce, challenge.brokerNonce) });
    expect(await a.waitForClose()).toBe(CloseCode.authFailed);
    expect(a.closeReason).toMatch(/key changed while connecting/);
    expect(a.messages.some((m) => m.type === 'netmap')).toBe(false);
    expect((await listed(a.id)).online).toBe(false);
  });
});
