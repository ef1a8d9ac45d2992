import { createServer, type Server } from 'node:http';
import { connect, type Server as NetServer, type Socket } from 'node:net';
import { AdmissionGate } from '../../src/control/admission-gate';
import { heldListener } from '../../src/http/broker-listener';
import { waitUntil } from '../support/test-device';

// Behind a TLS-terminating proxy (--plain-http) there is no handshake: a connection counts until its
// first request, so a freed slot lets one held connection in, not the whole queue; open connections
// must not count as pending forever, or the 513th device would be held and turned away for good.
describe('AdmissionGate on a plain server', () => {
  let server: Server;
  let front: NetServer;
  let gate: AdmissionGate;
  let port = 0;
  let admitting = 0;
  const refused: number[] = [];
  const clients: Socket[] = [];
  beforeAll(async () => {
    server = createServer((_req, res) => res.end('ok'));
    gate = new AdmissionGate({
      maxPending: 1,
      maxHeld: 1,
      admitting: () => admitting,
      onRefused: (n) => refused.push(n),
    });
    gate.attach(server);
    front = heldListener(server, (socket, admit) => gate.offer(socket, admit));
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    port = (front.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await new Promise<void>((resolve) => front.close(() => resolve()));
  });

  /** Sends a request; `answered` settles with the status line once the server answers. */
  function request(): Promise<{ socket: Socket; answered: Promise<string>; closed: Promise<void> }> {
    const socket = connect(port, '127.0.0.1');
    clients.push(socket);
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const answered = new Promise<string>((resolve) =>
      socket.once('data', (d: Buffer) => resolve(d.toString().split('\r\n')[0]!)),
    );
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    return new Promise((resolve) => socket.once('connect', () => resolve({ socket, answered, closed })));
  }

  it('counts a connection until its first request, not while it stays open; a held one is read once let in', async () => {
    const quiet = connect(port, '127.0.0.1');
    clients.push(quiet);
    quiet.on('error', () => undefined);
    await new Promise<void>((resolve) => quiet.once('connect', () => resolve()));
    await waitUntil(() => (gate.pendingHandshakes === 1 ? true : undefined), 10_000, 'the quiet one pending');
    // The slot is taken until it sends its request: the next waits.
    const next = await request();
    await waitUntil(() => (gate.heldConnections === 1 ? true : undefined), 10_000, 'one held');
    quiet.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await next.answered).toBe('HTTP/1.1 200 OK');
    // Answered connections stay open and count no more.
    await waitUntil(() => (gate.pendingHandshakes === 0 ? true : undefined), 10_000, 'none pending');
    const served = await Promise.all([request(), request()]);
    for (const s of served) expect(await s.answered).toBe('HTTP/1.1 200 OK');
    expect(refused).toEqual([]);
    // Connections awaiting their netmap count too; with the hold full (1), the next is closed.
    admitting = 1;
    const held = await request();
    await waitUntil(() => (gate.heldConnections === 1 ? true : undefined), 10_000, 'one held');
    const turned = await request();
    await turned.closed;
    expect(refused).toEqual([1]);
    admitting = 0;
    gate.drain();
    expect(await held.answered).toBe('HTTP/1.1 200 OK');
  });
});
