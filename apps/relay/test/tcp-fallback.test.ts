import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { openTransport, sealTransport } from '@trellis/noise';
import {
  decodeBatchFrame,
  encodeBatchFrames,
  RELAY_PROBE_PATH,
  RELAY_TCP_BATCH_PROTOCOL,
  RELAY_TCP_PACKET_PROTOCOL,
  RELAY_TCP_PATH,
} from '@trellis/proto';
import { createSelfSigned, fingerprintOf, pinnedTlsConnect } from '@trellis/tls';
import { WebSocket } from 'ws';
import { Relay } from '../src/relay';
import { TcpFallbackServer } from '../src/tcp/tcp-fallback-server';
import { allocationFor } from './support/allocation-spec';
import { UdpDevice } from './support/udp-device';
import { WireGuardPair } from './support/wireguard-pair';

describe('TCP fallback (WebSocket over TLS, certificate pinned)', () => {
  let relay: Relay;
  let server: TcpFallbackServer;
  let port: number;
  let fingerprint: string;
  const cleanup: Array<() => unknown> = [];

  beforeAll(async () => {
    const tls = await createSelfSigned('trellis-relay', ['127.0.0.1']);
    fingerprint = fingerprintOf(tls.certPem);
    relay = new Relay({ host: '127.0.0.1', ports: { first: 48000, last: 48999 } });
    server = new TcpFallbackServer({ host: '127.0.0.1', port: 0, cert: tls.certPem, key: tls.keyPem, relay });
    port = (await server.listen()).port;
  });
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });
  afterAll(async () => {
    await server.close();
    await relay.closeAll();
  });

  const connect = (path: string, protocols: string[] = []) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, protocols, {
      createConnection: pinnedTlsConnect(fingerprint) as never,
    });
    ws.on('error', () => undefined); // a refused upgrade is asserted by the test itself
    cleanup.push(() => ws.terminate());
    return ws;
  };

  it('answers the probe path with 204', async () => {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: RELAY_PROBE_PATH,
          createConnection: pinnedTlsConnect(fingerprint) as never,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(204);
  });

  it('refuses a WebSocket for an unknown allocation', async () => {
    const ws = connect(`${RELAY_TCP_PATH}/${randomUUID()}`);
    const status = await new Promise<number>((resolve) =>
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
    );
    expect(status).toBe(404);
  });

  it('relays between a TCP-bound side and a UDP-bound side', async () => {
    const pair = new WireGuardPair();
    const spec = allocationFor(pair);
    const bound: string[] = [];
    const onBound = (_id: string, key: string, binding: { transport: string }) =>
      bound.push(`${key === pair.keys[0] ? 'a' : 'b'}:${binding.transport}`);
    relay.on('bound', onBound);
    cleanup.push(() => relay.off('bound', onBound));
    const udpPort = await relay.open(spec);
    const b = await new UdpDevice().start();
    cleanup.push(() => b.close());

    const a = connect(`${RELAY_TCP_PATH}/${spec.allocationId}`);
    const frames: Buffer[] = [];
    let wake: () => void = () => undefined;
    a.on('message', (data) => {
      frames.push(data as Buffer);
      wake();
    });
    const nextFrame = async () => {
      while (frames.length === 0) await new Promise<void>((r) => (wake = r));
      return frames.shift()!;
    };
    await new Promise((resolve) => a.once('open', resolve));

    const hs = pair.handshake();
    a.send(hs.initiation); // binds a to this WebSocket
    // Text frames are refused; forged binary frames are dropped like forged datagrams.
    const forged = pair.initiation('a');
    forged[30]! ^= 1;
    a.send(forged);
    await b.send(hs.response, udpPort); // binds b, reaches a as a frame
    expect(await nextFrame()).toEqual(Buffer.from(hs.response));
    expect(bound).toEqual(['a:tcp', 'b:udp']);

    a.send(sealTransport(hs.a, 0n, Buffer.from('over tcp')));
    expect(Buffer.from(openTransport(hs.b, await b.next())!.payload).toString()).toBe('over tcp');
    await b.send(sealTransport(hs.b, 0n, Buffer.from('back over udp')), udpPort);
    expect(Buffer.from(openTransport(hs.a, await nextFrame())!.payload).toString()).toBe('back over udp');
    expect(relay.totals().drops['bad-mac1']).toBe(1);
  });

  it('batches both ways for an agent that offers it: several packets a frame, bound by mac1 as before', async () => {
    const pair = new WireGuardPair();
    const spec = allocationFor(pair);
    const udpPort = await relay.open(spec);
    const b = await new UdpDevice().start();
    cleanup.push(() => b.close());
    const a = connect(`${RELAY_TCP_PATH}/${spec.allocationId}`, [
      RELAY_TCP_PACKET_PROTOCOL,
      RELAY_TCP_BATCH_PROTOCOL,
    ]);
    const packets: Buffer[] = [];
    let messages = 0;
    let wake: () => void = () => undefined;
    a.on('message', (data: Buffer) => {
      messages++;
      expect(decodeBatchFrame(data, (p) => packets.push(Buffer.from(p)))).toBe(true);
      wake();
    });
    const nextPacket = async () => {
      while (packets.length === 0) await new Promise<void>((r) => (wake = r));
      return packets.shift()!;
    };
    await new Promise((resolve) => a.once('open', resolve));
    expect(a.protocol).toBe(RELAY_TCP_BATCH_PROTOCOL);

    const hs = pair.handshake();
    const forged = pair.initiation('a');
    forged[30]! ^= 1;
    const badMac1 = relay.totals().drops['bad-mac1'];
    // The forged initiation is dropped; the real one in the same frame binds a.
    a.send(encodeBatchFrames([forged, hs.initiation])[0]!);
    await b.send(hs.response, udpPort);
    expect(await nextPacket()).toEqual(Buffer.from(hs.response));
    expect(relay.totals().drops['bad-mac1']).toBe(badMac1 + 1);

    const seal = (n: number) => sealTransport(hs.a, BigInt(n), Buffer.from(`a${n}`));
    a.send(encodeBatchFrames([seal(0), seal(1), seal(2)])[0]!);
    for (const n of [0, 1, 2])
      expect(Buffer.from(openTransport(hs.b, await b.next())!.payload).toString()).toBe(`a${n}`);
    const burst = Array.from({ length: 20 }, (_, n) => sealTransport(hs.b, BigInt(n), Buffer.from(`b${n}`)));
    await Promise.all(burst.map((p) => b.send(p, udpPort)));
    for (let n = 0; n < burst.length; n++)
      expect(Buffer.from(openTransport(hs.a, await nextPacket())!.payload).toString()).toBe(`b${n}`);
    expect(messages).toBeLessThanOrEqual(1 + burst.length);

    // A frame whose lengths do not add up closes the connection (1007).
    const closed = new Promise<number>((resolve) => a.once('close', resolve));
    a.send(Buffer.from([0, 9, 1]));
    expect(await closed).toBe(1007);
  });
});
