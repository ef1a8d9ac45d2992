import { newNonce } from '@trellis/crypto';
import { CAPABILITY_VERSION, CloseCode } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

// docs/capability-versions.md: a broker serves agents of the versions before its own (a rolling
// upgrade) and after it (an agent upgraded first), and announces its own in the challenge.
describe.each(BACKENDS)('capability versions on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  const logs = new LogSink();
  const open: TestDevice[] = [];

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend, {}, logs);
  });
  afterEach(() => {
    for (const d of open.splice(0)) d.close();
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  async function enrolled(hostname: string): Promise<TestDevice> {
    const d = t.device();
    open.push(d);
    await d.enroll(t.setupKey, { hostname });
    return d;
  }

  it.each([1, 2, 7])('serves an agent of version %i, announces its own and logs the agent’s', async (v) => {
    const d = await enrolled(`agent-v${v}`);
    const before = logs.lines.length;
    const netmap = await d.connect({ protocolVersion: v });
    expect(netmap.self.id).toBe(d.id);
    const challenge = d.messages.find((m) => m.type === 'challenge');
    expect(challenge?.type === 'challenge' && challenge.capabilityVersion).toBe(CAPABILITY_VERSION);
    const line = logs.lines.slice(before).find((l) => l.msg === 'device connected' && l.deviceId === d.id);
    expect(line?.capabilityVersion).toBe(v);
  });

  it('refuses a version older than it serves with 4426, naming both', async () => {
    const d = await enrolled('agent-v0');
    await d.open();
    d.send({
      type: 'hello',
      protocolVersion: 0,
      deviceId: d.id,
      publicKey: d.keys.publicKey,
      clientNonce: newNonce(),
    });
    expect(await d.waitForClose()).toBe(CloseCode.protocolMismatch);
    expect(d.closeReason).toMatch(
      /protocol version 0 is too old.*capability version 3 and serves 1 and newer/,
    );
    expect(d.messages).toEqual([]);
  });
});
