import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { RELAY_TCP_BATCH_PROTOCOL, RELAY_TCP_PACKET_PROTOCOL } from '@trellis/proto';
import pino from 'pino';
import { RelayTcpProxy } from '../src/relay/relay-tcp-proxy';
import { waitFor } from '../src/util/wait';
import { FakeTimers } from './helpers/fake-timers';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { TlsRelayDouble } from './helpers/tls-relay-double';

const ALLOCATION = '3b2c1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f';
const WAIT_MS = 10_000;

/** WireGuard's socket: sends from its listen port, records what it receives and from where. */
async function fakeWireGuard(): Promise<{ socket: Socket; port: number; got: Array<[string, number]> }> {
  const socket = createSocket('udp4');
  const got: Array<[string, number]> = [];
  socket.on('message', (m, from) => got.push([m.toString(), from.port]));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, port: (socket.address() as AddressInfo).port, got };
}

function sendTo(socket: Socket, endpoint: string, text: string): void {
  const [host, port] = endpoint.split(':');
  socket.send(Buffer.from(text), Number(port), host);
}

describe('RelayTcpProxy (TCP fallback over a pinned TLS WebSocket)', () => {
  const cert = makeSelfSignedCert('trellis-test-relay');
  const other = makeSelfSignedCert('someone-else');
  const log = pino({ level: 'silent' });
  let relay: TlsRelayDouble;
  let wg: Awaited<ReturnType<typeof fakeWireGuard>>;
  let proxy: RelayTcpProxy | null = null;
  let reconnects = 0;

  beforeEach(async () => {
    relay = new TlsRelayDouble(cert);
    await relay.start();
    wg = await fakeWireGuard();
    reconnects = 0;
  });
  afterEach(async () => {
    proxy?.close();
    proxy = null;
    wg.socket.close();
    await relay.stop();
  });

  function makeProxy(fingerprint: string, queuePackets?: number): RelayTcpProxy {
    proxy = new RelayTcpProxy({
      tcp: { url: relay.url, fingerprint },
      allocationId: ALLOCATION,
      listenPort: wg.port,
      logger: log,
      backoff: { initialMs: 20, maxMs: 100, random: () => 0 },
      onReconnected: () => reconnects++,
      ...(queuePackets !== undefined ? { queuePackets } : {}),
    });
    return proxy;
  }

  it('carries datagrams both ways: WireGuard → frame → relay, relay frame → WireGuard port', async () => {
    const p = makeProxy(cert.fingerprint);
    const endpoint = await p.start();
    expect(endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(p.url).toBe(`${relay.url}/v1/relay/tcp/${ALLOCATION}`);
    await waitFor(() => p.connected, WAIT_MS, 10);
    sendTo(wg.socket, endpoint, 'handshake-initiation');
    await waitFor(() => wg.got.length === 1, WAIT_MS, 10);
    // The relay got one binary frame; its echo reached WireGuard from the proxy's port.
    expect(relay.frames.map((f) => f.toString())).toEqual(['handshake-initiation']);
    expect(wg.got).toEqual([['handshake-initiation', Number(endpoint.split(':')[1])]]);
    expect(p.counters).toMatchObject({ toRelay: 1, fromRelay: 1, connects: 1 });
    expect(reconnects).toBe(0); // the first open is no reconnect
    // An older relay takes the first subprotocol offered: one packet per frame.
    expect(relay.protocols).toEqual([RELAY_TCP_PACKET_PROTOCOL]);
    // Text frames are not packets: counted and dropped.
    relay.push('not a packet');
    relay.push(Buffer.from('data'));
    await waitFor(() => wg.got.length === 2, WAIT_MS, 10);
    expect(p.counters.badFrames).toBe(1);
  });

  it('batches with a relay that takes it: packets in order both ways, a malformed batch counted', async () => {
    const batching = new TlsRelayDouble(cert, 'echo', true);
    await batching.start();
    try {
      const p = new RelayTcpProxy({
        tcp: { url: batching.url, fingerprint: cert.fingerprint },
        allocationId: ALLOCATION,
        listenPort: wg.port,
        logger: log,
      });
      proxy = p;
      const endpoint = await p.start();
      await waitFor(() => p.connected, WAIT_MS, 10);
      for (const text of ['one', 'two', 'three']) sendTo(wg.socket, endpoint, text);
      await waitFor(() => wg.got.length === 3, WAIT_MS, 10);
      expect(batching.frames.map((f) => f.toString())).toEqual(['one', 'two', 'three']);
      expect(wg.got.map(([text]) => text)).toEqual(['one', 'two', 'three']);
      expect(batching.protocols).toEqual([RELAY_TCP_BATCH_PROTOCOL]);
      expect(batching.messages).toBeLessThanOrEqual(3);
      expect(p.counters).toMatchObject({ toRelay: 3, fromRelay: 3, badFrames: 0 });
      batching.push(Buffer.from([0, 9, 1])); // a length past the frame's end
      await waitFor(() => p.counters.badFrames === 1, WAIT_MS, 10);
      expect(wg.got).toHaveLength(3);
    } finally {
      await batching.stop();
    }
  });

  it('drops datagrams that do not come from WireGuard', async () => {
    const p = makeProxy(cert.fingerprint);
    const endpoint = await p.start();
    await waitFor(() => p.connected, WAIT_MS, 10);
    const stranger = createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', r));
    sendTo(stranger, endpoint, 'spoofed');
    await waitFor(() => p.counters.foreignDrops === 1, WAIT_MS, 10);
    stranger.close();
    expect(relay.frames).toEqual([]);
  });

  it('refuses a relay whose certificate does not match the pin: nothing reaches it, packets wait (bounded)', async () => {
    const p = makeProxy(other.fingerprint, 2);
    const endpoint = await p.start();
    await waitFor(() => p.lastError !== null, WAIT_MS, 10);
    expect(p.lastError).toMatch(/pin mismatch.*relay's certificate/i);
    for (const text of ['one', 'two', 'three']) sendTo(wg.socket, endpoint, text);
    await waitFor(() => p.counters.queueDrops === 1, WAIT_MS, 10);
    expect(p.connected).toBe(false);
    expect(relay.requests).toBe(0);
    expect(relay.frames).toEqual([]);
  });

  it('reconnects after the relay restarts, says so, and sends what queued meanwhile (oldest dropped first)', async () => {
    const p = makeProxy(cert.fingerprint, 2);
    const endpoint = await p.start();
    await waitFor(() => p.connected, WAIT_MS, 10);
    const port = relay.port;
    await relay.stop();
    await waitFor(() => !p.connected, WAIT_MS, 10);
    for (const text of ['a', 'b', 'c']) sendTo(wg.socket, endpoint, text);
    await waitFor(() => p.counters.queueDrops === 1, WAIT_MS, 10);
    relay = new TlsRelayDouble(cert);
    await relay.start(port);
    await waitFor(() => wg.got.length === 2, WAIT_MS, 10);
    expect(relay.frames.map((f) => f.toString())).toEqual(['b', 'c']);
    expect(p.counters.connects).toBe(2);
    // WireGuard must handshake through the new connection for the relay to bind it.
    expect(reconnects).toBe(1);
  });

  it('stops for good on close: no reconnect is scheduled, even when the relay then goes away', async () => {
    const timers = new FakeTimers();
    proxy = new RelayTcpProxy({
      tcp: { url: relay.url, fingerprint: cert.fingerprint },
      allocationId: ALLOCATION,
      listenPort: wg.port,
      logger: log,
      timers,
    });
    const p = proxy;
    await p.start();
    await waitFor(() => p.connected, WAIT_MS, 10);
    await relay.stop();
    // While wanted, a lost connection schedules a reconnect.
    await waitFor(() => timers.timeouts().length === 1, WAIT_MS, 10);
    p.close();
    expect(timers.timeouts()).toEqual([]);
    expect(p.connected).toBe(false);
    expect(p.counters.connects).toBe(1);
  });
});
