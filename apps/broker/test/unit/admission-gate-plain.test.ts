import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { AdmissionGate } from '../../src/control/admission-gate';
import { waitUntil } from '../support/test-device';

// Behind a TLS-terminating proxy (--plain-http) there is no handshake: open connections must not
// count as pending forever, or the 513th device would be turned away for good.
describe('AdmissionGate on a plain server', () => {
  let server: Server;
  let port = 0;
  const clients: Socket[] = [];
  beforeAll(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function open(): Promise<{ socket: Socket; closed: Promise<void> }> {
    const socket = connect(port, '127.0.0.1');
    clients.push(socket);
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    return new Promise((resolve) => socket.once('connect', () => resolve({ socket, closed })));
  }

  it('counts no handshakes, only connections awaiting their netmap', async () => {
    let admitting = 0;
    const refused: number[] = [];
    const gate = new AdmissionGate({
      maxPending: 1,
      admitting: () => admitting,
      onRefused: (n) => refused.push(n),
    });
    const detach = gate.attach(server);
    let seen = 0;
    server.on('connection', () => seen++);
    await open();
    await open();
    await open();
    await waitUntil(() => (seen === 3 ? true : undefined), 10_000, 'three accepted');
    expect(gate.pendingHandshakes).toBe(0);
    expect(refused).toEqual([]);
    admitting = 1;
    const turned = await open();
    await turned.closed;
    expect(refused).toEqual([1]);
    detach();
  });
});
