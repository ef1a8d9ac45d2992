import { openTransport, sealTransport } from '@trellis/noise';
import type { RelayBinding } from '@trellis/proto';
import type { KernelCounters, KernelPair, KernelPath } from '../src/kernel/kernel-path';
import { Relay, type RelayOptions } from '../src/relay';
import { allocationFor } from './support/allocation-spec';
import { UdpDevice } from './support/udp-device';
import { forgedInitiation, WireGuardPair } from './support/wireguard-pair';

describe('relay over real UDP sockets', () => {
  let relay: Relay;
  const devices: UdpDevice[] = [];
  const device = async () => {
    const d = await new UdpDevice().start();
    devices.push(d);
    return d;
  };

  beforeEach(() => {
    relay = new Relay({ host: '127.0.0.1', ports: { first: 47000, last: 47999 } });
  });
  /** Replaces the relay with one on a test clock that checks for idle allocations every 5 ms. */
  const useClockedRelay = async (clock: { t: number }, extra: Partial<RelayOptions> = {}) => {
    await relay.closeAll();
    relay = new Relay({
      host: '127.0.0.1',
      ports: { first: 47000, last: 47999 },
      now: () => clock.t,
      idleCheckMs: 5,
      ...extra,
    });
  };
  afterEach(async () => {
    await relay.closeAll();
    await Promise.all(devices.splice(0).map((d) => d.close()));
  });

  it('carries a real WireGuard handshake and transport packets between two devices', async () => {
    const pair = new WireGuardPair();
    const spec = allocationFor(pair);
    const bound: Array<[string, string, RelayBinding]> = [];
    relay.on('bound', (...event) => bound.push(event));
    const port = await relay.open(spec);
    expect(port).toBeGreaterThanOrEqual(47000);
    expect(port).toBeLessThanOrEqual(47999);
    const [a, b, attacker] = [await device(), await device(), await device()];
    const hs = pair.handshake();

    await a.send(hs.initiation, port); // binds a; b is not bound yet, so this one is dropped
    await b.send(hs.response, port); // binds b, reaches a
    expect(await a.next()).toEqual(Buffer.from(hs.response));
    expect(bound).toEqual([
      [spec.allocationId, pair.keys[0], { transport: 'udp', endpoint: `127.0.0.1:${a.port}` }],
      [spec.allocationId, pair.keys[1], { transport: 'udp', endpoint: `127.0.0.1:${b.port}` }],
    ]);

    // Forged handshakes (right length, wrong mac1) and a flood from a stranger go nowhere.
    const forged = forgedInitiation(new Uint8Array(32).fill(1));
    for (let i = 0; i < 200; i++) await attacker.send(i % 2 ? forged : sealTransport(hs.a, BigInt(i)), port);
    await attacker.send(hs.initiation, port); // a replay from elsewhere

    await a.send(sealTransport(hs.a, 0n, Buffer.from('hello b')), port);
    // Loopback keeps order: the first packet b gets is a's, so nothing of the flood got through.
    const atB = openTransport(hs.b, await b.next());
    expect(Buffer.from(atB!.payload).toString()).toBe('hello b');
    await b.send(sealTransport(hs.b, 0n, Buffer.from('hello a')), port);
    expect(Buffer.from(openTransport(hs.a, await a.next())!.payload).toString()).toBe('hello a');
    expect(b.pending).toBe(0);

    const totals = relay.totals();
    expect(totals.udp.packets).toBe(3);
    expect(totals.drops['unbound-source']).toBe(100);
    // 101 handshakes from the attacker: past the handshake budget they are not even checked.
    expect(totals.drops['bad-mac1']).toBeGreaterThan(0);
    expect(totals.drops['bad-mac1'] + totals.drops['rate-limited'] + totals.drops.replay).toBe(101);
  });

  it('resumes on the port the broker asks for, with the bindings it kept', async () => {
    const pair = new WireGuardPair();
    const [a, b] = [await device(), await device()];
    const bindingOf = (d: UdpDevice): RelayBinding => ({ transport: 'udp', endpoint: `127.0.0.1:${d.port}` });
    const first = await relay.open(allocationFor(pair));
    await relay.closeAll();
    relay = new Relay({ host: '127.0.0.1', ports: { first: 47000, last: 47999 } });
    const spec = allocationFor(pair, {
      port: first,
      sides: [
        { publicKey: pair.keys[0], bound: bindingOf(a) },
        { publicKey: pair.keys[1], bound: bindingOf(b) },
      ],
    });
    expect(await relay.open(spec)).toBe(first);
    expect(await relay.open(spec)).toBe(first); // idempotent
    const hs = pair.handshake();
    await a.send(sealTransport(hs.a, 5n, Buffer.from('no handshake needed')), first);
    expect(Buffer.from(openTransport(hs.b, await b.next())!.payload).toString()).toBe('no handshake needed');
  });

  it('syncs to a list: opens the missing allocations, closes the others', async () => {
    const pair = new WireGuardPair();
    const [x, y, z] = [allocationFor(pair), allocationFor(pair), allocationFor(pair)];
    await relay.open(x);
    await relay.open(y);
    const failures = await relay.sync([y, z]);
    expect(failures).toEqual([]);
    expect(relay.ids().sort()).toEqual([y.allocationId, z.allocationId].sort());
  });

  it('expires an allocation that forwarded nothing for its idle timeout', async () => {
    const clock = { t: 0 };
    await useClockedRelay(clock);
    const spec = allocationFor(new WireGuardPair(), { idleTimeoutMs: 1000 });
    await relay.open(spec);
    const expired = new Promise<string>((resolve) => relay.once('expired', resolve));
    clock.t = 1000;
    expect(await expired).toBe(spec.allocationId);
    expect(relay.size).toBe(0);
  });

  it('hands a pair bound on both sides to the kernel path, and counts what the kernel forwarded', async () => {
    const clock = { t: 0 };
    const kernel = new RecordingKernelPath();
    await useClockedRelay(clock, { kernel, kernelActivityMs: 5 });
    const pair = new WireGuardPair();
    const spec = allocationFor(pair, { idleTimeoutMs: 1000 });
    const port = await relay.open(spec);
    const [a, b] = [await device(), await device()];
    const hs = pair.handshake();
    await a.send(hs.initiation, port);
    expect(kernel.calls).toEqual([`stop ${spec.allocationId}`]); // one side bound: the process forwards
    await b.send(hs.response, port);
    await a.next();
    expect(kernel.calls.at(-1)).toBe(
      `forward ${spec.allocationId} ${spec.accountId} ${port} 127.0.0.1:${a.port} 127.0.0.1:${b.port}`,
    );
    // The kernel forwarded 10 packets: counted, and the allocation does not idle out meanwhile.
    kernel.answer.set(spec.allocationId, { packets: 10, bytes: 1480, rateLimited: 2 });
    clock.t = 900;
    await waitUntil(() => relay.totals().udp.packets === 11); // 1 by the process (the response) + 10
    expect(relay.totals().drops['rate-limited']).toBe(2);
    clock.t = 1500;
    await new Promise((r) => setTimeout(r, 30));
    expect(relay.size).toBe(1);
    // Counters restart after the kernel path was stopped and started again: no negative deltas.
    kernel.answer.set(spec.allocationId, { packets: 4, bytes: 400, rateLimited: 0 });
    await waitUntil(() => relay.totals().udp.packets === 15);
    await relay.close(spec.allocationId);
    expect(kernel.calls.at(-1)).toBe(`stop ${spec.allocationId}`);
  });
});

/** Records what the relay asks of the kernel; answers counters from `answer`. */
class RecordingKernelPath implements KernelPath {
  readonly calls: string[] = [];
  readonly answer = new Map<string, KernelCounters>();

  async forward(p: KernelPair): Promise<void> {
    this.calls.push(
      `forward ${p.allocationId} ${p.accountId} ${p.port} ${p.a.address}:${p.a.port} ${p.b.address}:${p.b.port}`,
    );
  }

  async stop(allocationId: string): Promise<void> {
    this.calls.push(`stop ${allocationId}`);
  }

  async counters(): Promise<Map<string, KernelCounters>> {
    return new Map(this.answer);
  }

  async close(): Promise<void> {}
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}
