import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloseCode } from '@trellis/proto';
import type { Counter, Gauge } from 'prom-client';
import type { BrokerOptions } from '../../src/broker';
import { type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(60_000);

const MAX = 5;

/** A raw TCP connection to the broker that never starts TLS; resolves once connected. */
async function rawTcpTo(
  t: TestBroker,
  sockets: Socket[],
): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect(Number(new URL(t.broker.url).port), '127.0.0.1');
  sockets.push(socket);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

/** A broker on PGlite for the enclosing describe (handshakes time out after 1 s), and its logs. */
function brokerWith(overrides: Partial<BrokerOptions>) {
  const ctx = { t: undefined as unknown as TestBroker, logs: new LogSink(), sockets: [] as Socket[] };
  let backend: Backend | undefined;
  beforeAll(async () => {
    backend = await createBackend('pglite');
    ctx.t = await startTestBroker(backend, { tlsHandshakeTimeoutMs: 1_000, ...overrides }, ctx.logs);
  });
  afterEach(() => {
    for (const s of ctx.sockets.splice(0)) s.destroy();
  });
  afterAll(async () => {
    await ctx.t?.close();
    await backend?.dispose();
  });
  return ctx;
}

describe('connection limits (pglite)', () => {
  const ctx = brokerWith({ maxConnectionsPerAddress: MAX });
  const { logs } = ctx;

  const rawTcp = () => rawTcpTo(ctx.t, ctx.sockets);

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
    const d = ctx.t.device();
    await d.enroll(ctx.t.setupKey, { hostname: 'after-the-cap' });
    await d.connect();
    d.close();
    expect((await ctx.t.api('GET', '/metrics')).text).toMatch(
      /trellis_errors_total\{kind="connection_cap"\} [1-9]/,
    );
  });

  it('a device past its message budget is closed with rateLimited; the broker keeps serving it', async () => {
    const d = ctx.t.device();
    await d.enroll(ctx.t.setupKey, { hostname: 'flood' });
    await d.connect();
    for (let i = 0; i < 3_000; i++) d.send({ type: 'ping', t: i });
    expect(await d.waitForClose()).toBe(CloseCode.rateLimited);
    expect(logs.lines.some((l) => l.code === CloseCode.rateLimited)).toBe(true);
    await d.connect();
    d.close();
  });
});

describe('admission control (pglite)', () => {
  const MAX_PENDING = 2;
  // Held up to a minute: the test decides when the held get in, not the clock.
  const ctx = brokerWith({
    maxConnectionsPerAddress: 0,
    maxPendingConnections: MAX_PENDING,
    // The stuck connections stay pending until the test closes them, however slow the machine.
    tlsHandshakeTimeoutMs: 60_000,
    admissionHoldMs: 60_000,
  });
  const { logs } = ctx;

  const rawTcp = () => rawTcpTo(ctx.t, ctx.sockets);
  const value = async (metric: Gauge | Counter) => (await metric.get()).values[0]?.value ?? 0;
  async function pendingIs(n: number): Promise<void> {
    while ((await value(ctx.t.broker.metrics.admissionPending)) !== n) await sleep(10);
  }
  async function heldIs(n: number): Promise<void> {
    while ((await value(ctx.t.broker.metrics.admissionHeld)) !== n) await sleep(10);
  }

  it(`with ${MAX_PENDING} connections pending, the next ones wait unread and get in first come first served; beyond the hold, closed before TLS`, async () => {
    const d = ctx.t.device();
    await d.enroll(ctx.t.setupKey, { hostname: 'in-the-storm' });
    const pending = await Promise.all(Array.from({ length: MAX_PENDING }, () => rawTcp()));
    await pendingIs(MAX_PENDING);
    // First in the hold: the device. Then raw connections fill it (8 × MAX_PENDING); one more is closed at once.
    const connected = d.connect();
    await heldIs(1);
    const held = [];
    for (let i = 1; i < 8 * MAX_PENDING; i++) held.push(await rawTcp());
    await heldIs(8 * MAX_PENDING);
    const extra = await rawTcp();
    await extra.closed;
    expect(await value(ctx.t.broker.metrics.connectionsRefused)).toBe(1);
    expect(logs.lines.some((l) => l.msg === 'refusing connections: too many waiting for admission')).toBe(
      true,
    );
    // Pending ones going lets the held in, the device first: it gets its netmap.
    for (const p of pending) p.socket.destroy();
    await connected;
    d.close();
    for (const h of held) h.socket.destroy();
    await pendingIs(0);
    await heldIs(0);
    expect(await value(ctx.t.broker.metrics.connectionsRefused)).toBe(1);
  });
});
