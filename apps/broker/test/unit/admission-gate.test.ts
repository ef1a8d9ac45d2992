import { createServer, type Server } from 'node:https';
import { connect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createSelfSigned } from '@trellis/tls';
import { AdmissionGate } from '../../src/control/admission-gate';
import { waitUntil } from '../support/test-device';

describe('AdmissionGate', () => {
  let server: Server;
  let port = 0;
  let gate: AdmissionGate;
  let detach: () => void;
  let admitting = 0;
  let clock = 1_000;
  const refused: number[] = [];
  const clients: Array<Socket | TLSSocket> = [];

  function guard(maxPending: number): void {
    gate = new AdmissionGate({
      maxPending,
      admitting: () => admitting,
      onRefused: (pending) => refused.push(pending),
      now: () => clock,
    });
    detach = gate.attach(server);
  }

  beforeAll(async () => {
    const pem = await createSelfSigned('gate.test', ['gate.test']);
    server = createServer({ cert: pem.certPem, key: pem.keyPem });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterEach(() => {
    detach();
    for (const c of clients.splice(0)) c.destroy();
    admitting = 0;
    refused.length = 0;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A TCP connection that never starts TLS; `closed` settles when the server closes it. */
  async function rawTcp(): Promise<{ socket: Socket; closed: Promise<void> }> {
    const socket = connect(port, '127.0.0.1');
    clients.push(socket);
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    return { socket, closed };
  }

  /** A full TLS handshake; resolves once it is done. */
  function tlsClient(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve(s));
      clients.push(s);
      s.once('error', reject);
    });
  }

  it('counts connections in their handshake and closes the next one at the limit, before TLS', async () => {
    guard(2);
    await rawTcp();
    await rawTcp();
    await waitUntil(() => (gate.pendingHandshakes === 2 ? true : undefined), 10_000, 'two pending');
    expect(gate.turnedBackWithin(60_000)).toBe(false);
    const extra = await rawTcp();
    await extra.closed;
    expect(refused).toEqual([2]);
    expect(gate.pendingHandshakes).toBe(2);
    expect(gate.turnedBackWithin(1)).toBe(true);
    clock += 5_000;
    expect(gate.turnedBackWithin(5_000)).toBe(false);
    expect(gate.turnedBackWithin(5_001)).toBe(true);
  });

  it('frees the slot of a finished handshake (the connection stays open) and of a closed one', async () => {
    guard(1);
    const done = await tlsClient();
    await waitUntil(() => (gate.pendingHandshakes === 0 ? true : undefined), 10_000, 'handshake counted out');
    expect(done.destroyed).toBe(false);
    expect(gate.turnedBackWithin(60_000)).toBe(false); // a finished handshake turns nobody back
    const raw = await rawTcp();
    await waitUntil(() => (gate.pendingHandshakes === 1 ? true : undefined), 10_000, 'one pending');
    raw.socket.destroy();
    await waitUntil(() => (gate.pendingHandshakes === 0 ? true : undefined), 10_000, 'close counted out');
    // A client that gave up in its handshake is coming back, as a refused one is.
    expect(gate.turnedBackWithin(1)).toBe(true);
    await tlsClient();
    expect(refused).toEqual([]);
  });

  it('counts control connections awaiting their netmap toward the limit', async () => {
    guard(2);
    admitting = 2;
    const first = await rawTcp();
    await first.closed;
    expect(refused).toEqual([2]);
    admitting = 1;
    await tlsClient();
    expect(refused).toEqual([2]);
  });

  it('limits nothing with 0', async () => {
    guard(0);
    admitting = 1_000;
    await Promise.all([tlsClient(), tlsClient(), rawTcp()]);
    expect(refused).toEqual([]);
  });

  it('stops counting once detached', async () => {
    guard(1);
    detach();
    await rawTcp();
    await rawTcp();
    await tlsClient();
    expect(gate.pendingHandshakes).toBe(0);
    expect(refused).toEqual([]);
  });
});
