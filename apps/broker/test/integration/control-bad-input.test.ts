import { generateKeyPair, newNonce } from '@trellis/crypto';
import { CloseCode, MAX_CONTROL_FRAME_BYTES, PROTOCOL_VERSION } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import { type TestDevice, waitUntil } from '../support/test-device';

jest.setTimeout(60_000);

describe.each(BACKENDS)('control channel bad input on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  const logs = new LogSink();
  let enrolled: TestDevice;
  const open: TestDevice[] = [];

  beforeAll(async () => {
    backend = await createBackend(kind);
    // Short timeouts so the timeout paths are reachable in a test.
    t = await startTestBroker(backend, { authTimeoutMs: 300, heartbeatIntervalMs: 200 }, logs);
    enrolled = t.device();
    await enrolled.enroll(t.setupKey, { hostname: 'victim' });
  });
  afterEach(() => {
    for (const d of open.splice(0)) d.close();
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  /** A raw connection from the enrolled device's perspective, speaking nothing yet. */
  async function raw(): Promise<TestDevice> {
    const d = t.device();
    d.enrollment = enrolled.enrollment;
    await d.open();
    open.push(d);
    return d;
  }

  const hello = (over: Record<string, unknown> = {}) => ({
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    deviceId: enrolled.id,
    publicKey: enrolled.keys.publicKey,
    clientNonce: newNonce(),
    ...over,
  });

  // Frames are built lazily: the enrolled device exists only once beforeAll ran.
  const cases: Array<[string, () => unknown[], number]> = [
    ['malformed JSON', () => ['{"type": "hello",'], CloseCode.badMessage],
    ['a JSON non-object', () => ['42'], CloseCode.badMessage],
    ['an unknown message type', () => [{ type: 'launch-missiles' }], CloseCode.badMessage],
    ['unknown fields in hello', () => [{ ...hello(), extra: 1 }], CloseCode.badMessage],
    ['a malformed device id', () => [hello({ deviceId: 'nope' })], CloseCode.badMessage],
    ['auth before hello', () => [{ type: 'auth', proof: newNonce() }], CloseCode.badMessage],
    ['ping before auth', () => [{ type: 'ping', t: 1 }], CloseCode.badMessage],
    ['a capability version too old', () => [hello({ protocolVersion: 0 })], CloseCode.protocolMismatch],
    [
      'an unknown device',
      () => [hello({ deviceId: '00000000-0000-4000-8000-000000000000' })],
      CloseCode.authFailed,
    ],
    [
      'the wrong key for the device',
      () => [hello({ publicKey: generateKeyPair().publicKey })],
      CloseCode.authFailed,
    ],
    ['a wrong proof', () => [hello(), { type: 'auth', proof: newNonce() }], CloseCode.authFailed],
  ];

  it.each(cases)('%s closes with the matching code and logs it', async (_name, frames, code) => {
    const d = await raw();
    const before = logs.lines.length;
    const list = frames();
    for (const f of list) {
      if (list.length > 1 && (f as { type?: string }).type === 'auth')
        await d.waitFor((m) => m.type === 'challenge');
      d.send(typeof f === 'string' ? f : JSON.stringify(f));
    }
    expect(await d.waitForClose()).toBe(code);
    expect(logs.lines.slice(before).some((l) => l.code === code)).toBe(true);
  });

  it('a binary frame is refused', async () => {
    const d = await raw();
    d.ws!.send(Buffer.from([1, 2, 3]));
    expect(await d.waitForClose()).toBe(CloseCode.badMessage);
  });

  it('an oversized frame is refused with 1009', async () => {
    const d = await raw();
    d.send(JSON.stringify({ type: 'ping', t: 1, pad: 'x'.repeat(MAX_CONTROL_FRAME_BYTES) }));
    expect(await d.waitForClose()).toBe(1009);
  });

  it('no authentication within the timeout closes with authTimeout', async () => {
    const d = await raw();
    expect(await d.waitForClose()).toBe(CloseCode.authTimeout);
    const d2 = await raw();
    d2.send(hello());
    await d2.waitFor((m) => m.type === 'challenge');
    expect(await d2.waitForClose()).toBe(CloseCode.authTimeout);
  });

  it('an authenticated but silent device is closed with heartbeatTimeout and goes offline', async () => {
    const d = t.device();
    open.push(d);
    await d.enroll(t.setupKey, { hostname: 'silent' });
    await d.connect();
    expect(await d.waitForClose()).toBe(CloseCode.heartbeatTimeout);
    const devices = t.broker.services.devices;
    let online = true;
    await waitUntil(
      () => {
        devices.forAuth(d.id).then((r) => {
          online = r?.device.connectionId != null;
        });
        return online ? undefined : true;
      },
      15_000,
      'the device to go offline',
    );
    expect((await t.broker.services.devices.forAuth(d.id))?.device.connectionId).toBeNull();
  });

  it('bad messages after authentication close the connection; the broker keeps serving', async () => {
    const d = t.device();
    open.push(d);
    await d.enroll(t.setupKey, { hostname: 'chatty' });
    await d.connect();
    d.send({ type: 'endpoints', endpoints: ['not an endpoint'] });
    expect(await d.waitForClose()).toBe(CloseCode.badMessage);
    const again = t.device();
    open.push(again);
    await again.enroll(t.setupKey, { hostname: 'after' });
    await again.connect();
    again.send(hello());
    expect(await again.waitForClose()).toBe(CloseCode.badMessage);
  });

  it('the error counter counts rejected messages by kind', async () => {
    const metrics = await t.api('GET', '/metrics');
    expect(metrics.text).toMatch(/trellis_errors_total\{kind="bad_json"\} [1-9]/);
    expect(metrics.text).toMatch(/trellis_errors_total\{kind="auth_failed"\} [1-9]/);
    expect(metrics.text).toMatch(/trellis_errors_total\{kind="auth_timeout"\} [1-9]/);
  });
});
