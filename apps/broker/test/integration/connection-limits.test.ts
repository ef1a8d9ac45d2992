import { connect, type Socket } from 'node:net';
import { CloseCode } from '@trellis/proto';
import { type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(60_000);

const MAX = 5;

describe('connection limits (pglite)', () => {
  let backend: Backend;
  let t: TestBroker;
  const logs = new LogSink();
  const sockets: Socket[] = [];

  beforeAll(async () => {
    backend = await createBackend('pglite');
    t = await startTestBroker(backend, { maxConnectionsPerAddress: MAX, tlsHandshakeTimeoutMs: 1_000 }, logs);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  const port = () => Number(new URL(t.broker.url).port);
  /** A raw TCP connection that never starts TLS; resolves once connected. */
  async function rawTcp(): Promise<{ socket: Socket; closed: Promise<void> }> {
    const socket = connect(port(), '127.0.0.1');
    sockets.push(socket);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, closed };
  }

  it('drops a connection that never sends a ClientHello at the TLS handshake timeout', async () => {
    const { closed } = await rawTcp();
    // Node's default would hold it 120 s and this test would time out.
    await closed;
  });

  it(`one address holds at most ${MAX} connections; the rest are closed at once and counted`, async () => {
    const held = await Promise.all(Array.from({ length: MAX }, () => rawTcp()));
    const extra = await rawTcp();
    await extra.closed;
    expect(held.every((h) => !h.socket.destroyed)).toBe(true);
    expect(logs.lines.some((l) => l.msg === 'connection refused: too many from one address')).toBe(true);
    // A slot frees when a connection closes: a real client gets through again.
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    const d = t.device();
    await d.enroll(t.setupKey, { hostname: 'after-the-cap' });
    await d.connect();
    d.close();
    expect((await t.api('GET', '/metrics')).text).toMatch(
      /trellis_errors_total\{kind="connection_cap"\} [1-9]/,
    );
  });

  it('a device past its message budget is closed with rateLimited; the broker keeps serving it', async () => {
    const d = t.device();
    await d.enroll(t.setupKey, { hostname: 'flood' });
    await d.connect();
    for (let i = 0; i < 3_000; i++) d.send({ type: 'ping', t: i });
    expect(await d.waitForClose()).toBe(CloseCode.rateLimited);
    expect(logs.lines.some((l) => l.code === CloseCode.rateLimited)).toBe(true);
    await d.connect();
    d.close();
  });
});
