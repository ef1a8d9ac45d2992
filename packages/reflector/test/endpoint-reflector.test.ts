import { createSocket, type Socket } from 'node:dgram';
import { consumeResponse, createInitiation, generateKeyPair } from '@trellis/noise';
import { EndpointReflector, type Observation } from '@trellis/reflector';

// The UDP shell on loopback: replies go back to the sender's port, junk gets nothing back.

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

describe('EndpointReflector over UDP', () => {
  const device = generateKeyPair();
  const reflector = new EndpointReflector({
    privateKey: generateKeyPair().privateKey,
    host: '127.0.0.1',
    port: 0,
    isEnrolled: (key) => key === b64(device.publicKey),
  });
  let client: Socket;
  let port = 0;

  beforeAll(async () => {
    port = (await reflector.start()).port;
    client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    await reflector.close();
    await new Promise<void>((r) => client.close(() => r()));
  });

  it('answers only the valid initiation, to its source, and emits observed', async () => {
    const received: Buffer[] = [];
    client.on('message', (m) => received.push(m));
    const observed = new Promise<Observation>((r) => reflector.once('observed', r));
    const publicKey = new Uint8Array(Buffer.from(reflector.publicKey, 'base64'));
    const init = createInitiation(device, publicKey, { senderIndex: 42 });
    const stranger = createInitiation(generateKeyPair(), publicKey, { senderIndex: 43 });
    // Junk and a non-enrolled device first; UDP on loopback keeps their order from one socket.
    for (const packet of [
      Buffer.alloc(0),
      Buffer.alloc(148, 1),
      Buffer.alloc(2000, 4),
      stranger.packet,
      init.packet,
    ]) {
      client.send(packet, port, '127.0.0.1');
    }
    const observation = await observed;
    expect(observation).toMatchObject({
      publicKey: b64(device.publicKey),
      endpoint: `127.0.0.1:${client.address().port}`,
      via: 'initiation',
    });
    while (received.length === 0) await new Promise((r) => setTimeout(r, 20));
    expect(received).toHaveLength(1);
    expect(consumeResponse(init.state, received[0]!).ok).toBe(true);
    expect(reflector.counters()).toMatchObject({
      packets: 5,
      handshakes: 1,
      dropped: { malformed: 2, oversize: 1, 'unknown-key': 1 },
    });
    expect(reflector.lookup(b64(device.publicKey))?.port).toBe(client.address().port);
  });

  it('survives a throwing observed listener, counts it, and keeps serving', async () => {
    const publicKey = new Uint8Array(Buffer.from(reflector.publicKey, 'base64'));
    const buggy = () => {
      throw new Error('listener bug');
    };
    reflector.on('observed', buggy);
    client.send(createInitiation(device, publicKey, { senderIndex: 44 }).packet, port, '127.0.0.1');
    while (reflector.counters().listenerErrors === 0) await new Promise((r) => setTimeout(r, 20));
    reflector.off('observed', buggy);
    const observed = new Promise<Observation>((r) => reflector.once('observed', r));
    client.send(createInitiation(device, publicKey, { senderIndex: 45 }).packet, port, '127.0.0.1');
    expect((await observed).publicKey).toBe(b64(device.publicKey));
    expect(reflector.counters().listenerErrors).toBe(1);
  });

  it('rejects start on a taken port and can start once the port is free', async () => {
    const other = new EndpointReflector({
      privateKey: generateKeyPair().privateKey,
      host: '127.0.0.1',
      port,
      isEnrolled: () => false,
    });
    await expect(other.start()).rejects.toThrow(/EADDRINUSE/);
    await reflector.close();
    await expect(other.start()).resolves.toEqual({ address: '127.0.0.1', port });
    await other.close();
  });
});
