import { createServer, type Server } from 'node:https';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createSelfSigned } from '@trellis/tls';
import { AdmissionGate, type AdmissionGateOptions } from '../../src/control/admission-gate';
import { heldListener } from '../../src/http/broker-listener';
import { waitUntil } from '../support/test-device';

describe('AdmissionGate', () => {
  let server: Server;
  let front: NetServer;
  let port = 0;
  let gate: AdmissionGate;
  let detach: () => void;
  let admitting = 0;
  let clock = 1_000;
  const refused: number[] = [];
  const clients: Array<Socket | TLSSocket> = [];

  function guard(maxPending: number, more: Partial<AdmissionGateOptions> = {}): void {
    gate = new AdmissionGate({
      maxPending,
      admitting: () => admitting,
      onRefused: (pending) => refused.push(pending),
      now: () => clock,
      ...more,
    });
    detach = gate.attach(server);
  }

  beforeAll(async () => {
    const pem = await createSelfSigned('gate.test', ['gate.test']);
    server = createServer({ cert: pem.certPem, key: pem.keyPem });
    front = heldListener(server, (socket, admit) => gate.offer(socket, admit));
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    port = (front.address() as { port: number }).port;
  });
  afterEach(() => {
    detach();
    for (const c of clients.splice(0)) c.destroy();
    admitting = 0;
    refused.length = 0;
  });
  afterAll(() => new Promise<void>((resolve) => front.close(() => resolve())));

  /** A TCP connection that never starts TLS; `closed` settles when the server closes it. */
  async function rawTcp(): Promise<{ socket: Socket; closed: Promise<void> }> {
    const socket = connect(port, '127.0.0.1');
    clients.push(socket);
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, closed };
  }

  /** A TLS client: `secure` settles when its handshake is done, `closed` when it is closed. */
  function tlsClient(): { secure: Promise<TLSSocket>; closed: Promise<void> } {
    const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    clients.push(s);
    s.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    const secure = new Promise<TLSSocket>((resolve, reject) => {
      s.once('secureConnect', () => resolve(s));
      s.once('close', () => reject(new Error('closed before its handshake')));
    });
    secure.catch(() => undefined);
    return { secure, closed };
  }

  const heldIs = (n: number) =>
    waitUntil(() => (gate.heldConnections === n ? true : undefined), 10_000, `${n} held`);
  const pendingIs = (n: number) =>
    waitUntil(() => (gate.pendingHandshakes === n ? true : undefined), 10_000, `${n} pending`);

  it('holds a connection beyond the limit unread, and lets it in when a pending one goes', async () => {
    guard(2);
    const first = await rawTcp();
    await rawTcp();
    await pendingIs(2);
    const waiting = tlsClient();
    await heldIs(1);
    // Held, not read: its handshake cannot have started.
    let secured = false;
    void waiting.secure.then(() => (secured = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(secured).toBe(false);
    first.socket.destroy();
    await waiting.secure;
    await heldIs(0);
    expect(refused).toEqual([]);
  });

  it('lets held connections in first come, first served', async () => {
    guard(1);
    const blocker = await rawTcp();
    await pendingIs(1);
    const a = tlsClient();
    await heldIs(1);
    const b = tlsClient();
    await heldIs(2);
    const order: string[] = [];
    void a.secure.then(() => order.push('a'));
    void b.secure.then(() => order.push('b'));
    blocker.socket.destroy();
    await a.secure;
    expect(order).toEqual(['a']); // b took the slot a's finished handshake freed
    await b.secure;
    expect(order).toEqual(['a', 'b']);
  });

  it('closes one held longer than maxHoldMs before any TLS work; its client is coming back', async () => {
    guard(1, { maxHoldMs: 3_000 });
    await rawTcp();
    await pendingIs(1);
    const late = await rawTcp();
    await heldIs(1);
    expect(gate.turnedBackWithin(60_000)).toBe(false);
    clock += 3_000;
    gate.drain();
    expect(gate.heldConnections).toBe(1); // not over the limit yet
    clock += 1;
    gate.drain();
    await late.closed;
    expect(refused).toEqual([1]);
    expect(gate.turnedBackWithin(1)).toBe(true);
    expect(gate.pendingHandshakes).toBe(1);
  });

  it('closes a new connection at once when the hold is full', async () => {
    guard(1, { maxHeld: 1 });
    await rawTcp();
    await pendingIs(1);
    await rawTcp();
    await heldIs(1);
    const extra = await rawTcp();
    await extra.closed;
    expect(refused).toEqual([1]);
    expect(gate.heldConnections).toBe(1);
  });

  it('frees the slot of a finished handshake (the connection stays open) and of a closed one', async () => {
    guard(1);
    const done = await tlsClient().secure;
    await pendingIs(0);
    expect(done.destroyed).toBe(false);
    expect(gate.turnedBackWithin(60_000)).toBe(false); // a finished handshake turns nobody back
    const raw = await rawTcp();
    await pendingIs(1);
    raw.socket.destroy();
    await pendingIs(0);
    // A client that gave up in its handshake is coming back, as a refused one is.
    expect(gate.turnedBackWithin(1)).toBe(true);
    await tlsClient().secure;
    expect(refused).toEqual([]);
  });

  it('counts control connections awaiting their netmap, and lets one in when they get it', async () => {
    guard(2);
    admitting = 2;
    const held = tlsClient();
    await heldIs(1);
    admitting = 1;
    gate.drain();
    await held.secure;
    expect(refused).toEqual([]);
  });

  it('lets in the next one when a held connection whose client left is let in and closes', async () => {
    guard(1);
    const blocker = await rawTcp();
    await pendingIs(1);
    const gone = await rawTcp();
    await heldIs(1);
    const next = tlsClient();
    await heldIs(2);
    gone.socket.destroy();
    blocker.socket.destroy();
    await next.secure;
    await heldIs(0);
  });

  it('holds at most maxHeldPerAddress from one address; the next from it is closed', async () => {
    guard(1, { maxHeldPerAddress: 2 });
    await rawTcp();
    await pendingIs(1);
    await rawTcp();
    await rawTcp();
    await heldIs(2);
    const third = await rawTcp();
    await third.closed;
    expect(refused).toEqual([1]);
    expect(gate.heldConnections).toBe(2);
  });

  it('a held connection that is being read and reset by its client is no unhandled error', async () => {
    guard(1);
    // As a PROXY-protocol socket is: read (its header), then paused and offered.
    const reading = createNetServer((socket) => {
      socket.once('data', () => {
        socket.pause();
        gate.offer(socket, (s) => server.emit('connection', s));
      });
    });
    await new Promise<void>((resolve) => reading.listen(0, '127.0.0.1', resolve));
    try {
      await rawTcp();
      await pendingIs(1);
      const victim = connect((reading.address() as { port: number }).port, '127.0.0.1');
      victim.on('error', () => undefined);
      victim.write('header');
      await heldIs(1);
      // No 'error' listener here: only the gate's keeps the reset from being thrown.
      const held = (gate as unknown as { held: Array<{ socket: Socket }> }).held[0]!.socket;
      const closed = new Promise<boolean>((resolve) => held.once('close', (hadError) => resolve(hadError)));
      victim.resetAndDestroy();
      expect(await closed).toBe(true);
      gate.drain();
    } finally {
      await new Promise<void>((resolve) => reading.close(() => resolve()));
    }
  });

  it('limits nothing with 0', async () => {
    guard(0);
    admitting = 1_000;
    await Promise.all([tlsClient().secure, tlsClient().secure, rawTcp()]);
    expect(gate.heldConnections).toBe(0);
    expect(refused).toEqual([]);
  });

  it('closes the held connections when detached', async () => {
    guard(1);
    await rawTcp();
    await pendingIs(1);
    const held = await rawTcp();
    await heldIs(1);
    detach();
    await held.closed;
    expect(gate.pendingHandshakes).toBe(0);
  });
});
