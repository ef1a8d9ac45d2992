import { createSocket, type Socket } from 'node:dgram';
import { createInitiation, keyPairFromPrivate } from '@trellis/noise';
import { NetmapMessage, type ReflectorInfo } from '@trellis/proto';
import { type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

/** One WireGuard handshake initiation from `device`'s key, sent from `socket` to a reflector. */
async function initiate(socket: Socket, device: TestDevice, reflector: ReflectorInfo): Promise<void> {
  const local = keyPairFromPrivate(Buffer.from(device.keys.privateKey, 'base64'));
  const { packet } = createInitiation(local, Buffer.from(reflector.publicKey, 'base64'), {
    senderIndex: Math.floor(Math.random() * 2 ** 31),
  });
  const [host, port] = reflector.endpoint.split(':');
  await new Promise<void>((resolve, reject) =>
    socket.send(packet, Number(port), host, (err) => (err ? reject(err) : resolve())),
  );
}

describe('broker endpoint reflectors', () => {
  let backend: Backend;
  let t: TestBroker;
  const sockets: Socket[] = [];
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    backend = await createBackend('pglite');
    t = await startTestBroker(backend, { reflector2: { host: '127.0.0.2', port: 0 } });
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    for (const s of sockets) s.close();
    await t?.close();
    await backend?.dispose();
  });

  async function udp(): Promise<Socket> {
    const s = createSocket('udp4');
    sockets.push(s);
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    return s;
  }

  it('puts both reflectors into NetmapSelf, turns observations into reflexive candidates and the NAT type', async () => {
    const a = t.device();
    const b = t.device();
    devices.push(a, b);
    await a.enroll(t.setupKey, { hostname: 'alpha' });
    await b.enroll(t.setupKey, { hostname: 'beta', endpoints: ['10.0.0.2:51820'] });
    const snapA = NetmapMessage.parse(await a.connect());
    const reflectors = snapA.self.reflectors ?? [];
    expect(reflectors).toHaveLength(2);
    expect(reflectors[0]!.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(reflectors[1]!.endpoint).toMatch(/^127\.0\.0\.2:\d+$/);
    expect(reflectors[0]!.publicKey).not.toBe(reflectors[1]!.publicKey);
    await b.connect();

    const socket = await udp();
    const port = socket.address().port;
    await initiate(socket, b, reflectors[0]!);
    await a.waitForPeers((p) =>
      Boolean(
        p.get(b.id)?.candidates?.some((c) => c.kind === 'reflexive' && c.endpoint === `127.0.0.1:${port}`),
      ),
    );
    // The LAN address b reported stays first; the reflexive one follows.
    expect(a.peers.get(b.id)!.candidates!.map((c) => c.kind)).toEqual(['lan', 'reflexive']);

    // The same socket seen at the second reflector: same port, so endpoint-independent mapping.
    await initiate(socket, b, reflectors[1]!);
    const delta = await b.waitFor((m) => m.type === 'delta' && m.self?.mappingType !== undefined);
    expect(delta.type === 'delta' && delta.self).toMatchObject({
      mappingType: 'endpoint-independent',
      reflexive: [`127.0.0.1:${port}`],
    });
    const counters = t.broker.reflectors!.counters();
    expect(counters[0]!.observations).toBeGreaterThanOrEqual(1);
    expect(counters[1]!.observations).toBeGreaterThanOrEqual(1);
  });

  it('drops initiations from keys that are not enrolled, silently and counted', async () => {
    const stranger = t.device();
    const reflector = t.broker.reflectors!.info[0]!;
    const socket = await udp();
    await initiate(socket, stranger, reflector);
    const dropped = () => {
      const c = t.broker.reflectors!.counters()[0]!;
      return Object.values(c.dropped).reduce((x, y) => x + y, 0);
    };
    const before = t.broker.reflectors!.counters()[0]!.observations;
    const deadline = Date.now() + 10_000;
    while (dropped() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(dropped()).toBeGreaterThan(0);
    expect(t.broker.reflectors!.counters()[0]!.observations).toBe(before);
  });
});
