import { createSocket } from 'node:dgram';
import { CAPABILITY_VERSION, CloseCode, MAX_HELD_PER_FRAME, RelayCloseCode } from '@trellis/proto';
import pino from 'pino';
import { BrokerLink, type BrokerLinkOptions } from '../src/broker/broker-link';
import { brokerTlsOptions, relayControlUrl } from '../src/broker/broker-url';
import { ReconnectBackoff } from '../src/broker/reconnect-backoff';
import { Relay } from '../src/relay';
import { allocationFor } from './support/allocation-spec';
import { FakeBroker } from './support/fake-broker';
import { WireGuardPair } from './support/wireguard-pair';

const TOKEN = `trl_${'A'.repeat(43)}`;
const relayPorts = { first: 49000, last: 49999 };

describe('broker link against a fake broker', () => {
  let broker: FakeBroker;
  let relay: Relay;
  let link: BrokerLink;
  let fatal: Error[];

  const linkOptions = (overrides: Partial<BrokerLinkOptions> = {}): BrokerLinkOptions => ({
    urls: [relayControlUrl(broker.url)],
    tls: brokerTlsOptions({ fingerprint: broker.fingerprint }),
    hello: { token: TOKEN, name: 'relay-1', publicAddress: '127.0.0.1', ports: relayPorts, version: 'test' },
    relay,
    log: pino({ level: 'silent' }),
    onFatal: (err) => fatal.push(err),
    backoff: new ReconnectBackoff(10, 40),
    ...overrides,
  });

  beforeEach(async () => {
    broker = new FakeBroker();
    await broker.start();
    relay = new Relay({ host: '127.0.0.1', ports: relayPorts });
    fatal = [];
    link = new BrokerLink(linkOptions());
  });
  afterEach(async () => {
    link.stop();
    await relay.closeAll();
    await broker.stop();
  });

  it('says hello, then holds exactly the welcome list with its ports and bindings', async () => {
    const pair = new WireGuardPair();
    const stale = allocationFor(pair);
    await relay.open(stale); // held from before, not listed: must be closed
    const fresh = allocationFor(pair);
    const resumed = allocationFor(pair, {
      port: 49500,
      sides: [
        { publicKey: pair.keys[0], bound: { transport: 'udp', endpoint: '127.0.0.1:40001' } },
        { publicKey: pair.keys[1], bound: null },
      ],
    });
    broker.onHello = () => broker.welcome([fresh, resumed]);
    link.start();
    const hello = await broker.waitFor('relay-hello');
    expect(hello).toMatchObject({
      token: TOKEN,
      name: 'relay-1',
      publicAddress: '127.0.0.1',
      protocolVersion: CAPABILITY_VERSION,
    });

    const allocated = await broker.waitFor('allocated', (m) => m.allocationId === fresh.allocationId);
    const bound = await broker.waitFor('bound', (m) => m.allocationId === resumed.allocationId);
    expect(bound).toMatchObject({
      publicKey: pair.keys[0],
      binding: { transport: 'udp', endpoint: '127.0.0.1:40001' },
    });
    expect(relay.ids().sort()).toEqual([fresh.allocationId, resumed.allocationId].sort());
    expect(relay.get(resumed.allocationId)?.port).toBe(49500);
    expect(relay.get(fresh.allocationId)?.port).toBe(allocated.port);
    // The resumed port is really open: binding it again fails.
    const probe = createSocket('udp4');
    await expect(
      new Promise((resolve, reject) =>
        probe.once('error', reject).bind(49500, '127.0.0.1', () => resolve(null)),
      ),
    ).rejects.toThrow(/EADDRINUSE/);
    probe.close();
  });

  it('reports every allocation it holds after the hello, in frames, and keeps those the welcome adopts', async () => {
    const pair = new WireGuardPair();
    const bound = allocationFor(pair, {
      port: 49100,
      sides: [
        { publicKey: pair.keys[0], bound: { transport: 'udp', endpoint: '127.0.0.1:40001' } },
        { publicKey: pair.keys[1], bound: null },
      ],
    });
    const specs = [bound, ...Array.from({ length: MAX_HELD_PER_FRAME }, () => allocationFor(pair))];
    for (const spec of specs) await relay.open(spec);
    // A restarted broker adopts all but one (say, of an account the token may not serve).
    const [refused, ...adopted] = specs.slice(1);
    broker.onHello = () => undefined;
    link.start();
    const hello = await broker.waitFor('relay-hello');
    expect(hello.held).toBe(specs.length);
    await broker.waitFor('relay-held', (m) => m.allocations.length === 1);
    const frames = broker.received.filter((m) => m.type === 'relay-held');
    expect(frames.map((f) => f.allocations.length)).toEqual([MAX_HELD_PER_FRAME, 1]);
    const reported = frames.flatMap((f) => f.allocations);
    expect(reported.map((a) => a.allocationId).sort()).toEqual(specs.map((a) => a.allocationId).sort());
    expect(reported.find((a) => a.allocationId === bound.allocationId)).toEqual({ ...bound, port: 49100 });
    for (const a of reported) expect(a.port).toBe(relay.get(a.allocationId)?.port);

    broker.welcome([bound, ...adopted].map((a) => ({ ...a, port: relay.get(a.allocationId)!.port })));
    await broker.waitFor('bound', (m) => m.allocationId === bound.allocationId);
    expect(relay.ids().sort()).toEqual([bound, ...adopted].map((a) => a.allocationId).sort());
    expect(relay.get(refused!.allocationId)).toBeUndefined();
    // Nothing was re-opened: no `allocated` for ports the broker already knows.
    expect(broker.received.some((m) => m.type === 'allocated')).toBe(false);
  });

  it('answers allocate with allocated or allocate-failed, and closes on release', async () => {
    broker.onHello = () => broker.welcome();
    link.start();
    await broker.waitFor('relay-hello');
    const spec = allocationFor(new WireGuardPair());
    broker.send({ type: 'allocate', allocation: spec });
    const allocated = await broker.waitFor('allocated', (m) => m.allocationId === spec.allocationId);
    expect(relay.get(spec.allocationId)?.port).toBe(allocated.port);

    const clash = allocationFor(new WireGuardPair(), { port: allocated.port });
    broker.send({ type: 'allocate', allocation: clash });
    const failed = await broker.waitFor('allocate-failed', (m) => m.allocationId === clash.allocationId);
    expect(failed.reason).toMatch(/EADDRINUSE/);

    broker.send({ type: 'release', allocationId: spec.allocationId });
    broker.send({ type: 'ping' as never, t: 0 } as never); // invalid for this direction: ignored, not fatal
    broker.send({ type: 'allocate', allocation: allocationFor(new WireGuardPair()) });
    await broker.waitFor('allocated', (m) => m.allocationId !== spec.allocationId);
    expect(relay.get(spec.allocationId)).toBeUndefined();
  });

  it('reports a refused token as fatal and does not retry', async () => {
    broker.onHello = () => broker.close(RelayCloseCode.badToken, 'unknown token');
    link.start();
    await broker.waitFor('relay-hello');
    while (fatal.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(fatal[0]!.message).toMatch(/refused the relay token.*4401/);
    expect(broker.connections).toBe(1);
  });

  it('reconnects after an ordinary close and keeps the data plane meanwhile', async () => {
    const spec = allocationFor(new WireGuardPair());
    let welcomes = 0;
    broker.onHello = () => {
      welcomes++;
      broker.welcome([spec]);
    };
    link.start();
    const first = await broker.waitFor('allocated');
    broker.close(1012, 'restarting');
    while (welcomes < 2) await new Promise((r) => setTimeout(r, 5));
    expect(broker.connections).toBe(2);
    expect(relay.get(spec.allocationId)?.port).toBe(first.port);
  });

  /** The versions of the relay-hellos received so far. */
  const helloVersions = () =>
    broker.received.flatMap((m) => (m.type === 'relay-hello' ? [m.protocolVersion] : []));

  /** A broker from before capability versions: refuses any but 1 (4426), welcomes without announcing one. */
  function legacyBroker(announce?: number): void {
    broker.onHello = () => {
      const version = helloVersions().at(-1);
      if (version === 1) broker.welcome([], announce);
      else
        broker.close(
          CloseCode.protocolMismatch,
          `protocol version ${version} not supported (broker speaks 1)`,
        );
    };
  }

  it('falls back to version 1 at once (no backoff) against a broker that refuses its version', async () => {
    link.stop();
    // A backoff this long would time the test out: the fallback must not wait for it.
    link = new BrokerLink(linkOptions({ backoff: new ReconnectBackoff(60_000, 60_000) }));
    legacyBroker();
    link.start();
    while (!link.connected) await new Promise((r) => setTimeout(r, 5));
    expect(helloVersions()).toEqual([CAPABILITY_VERSION, 1]);
    expect(broker.connections).toBe(2);
  });

  it('keeps version 1 for that broker across reconnections until it announces a newer one', async () => {
    legacyBroker();
    link.start();
    while (!link.connected) await new Promise((r) => setTimeout(r, 5));
    broker.close(1012, 'restarting');
    while (broker.connections < 3 || !link.connected) await new Promise((r) => setTimeout(r, 5));
    expect(helloVersions()).toEqual([CAPABILITY_VERSION, 1, 1]);
    // The broker was upgraded: it takes version 1 still, and announces its own.
    broker.onHello = () => broker.welcome([], CAPABILITY_VERSION);
    broker.close(1012, 'restarting');
    while (broker.connections < 4 || !link.connected) await new Promise((r) => setTimeout(r, 5));
    broker.close(1012, 'restarting');
    while (broker.connections < 5 || !link.connected) await new Promise((r) => setTimeout(r, 5));
    expect(helloVersions()).toEqual([CAPABILITY_VERSION, 1, 1, 1, CAPABILITY_VERSION]);
  });

  it('does not loop on a broker that refuses version 1 too: backs off as after any close', async () => {
    broker.onHello = () => broker.close(CloseCode.protocolMismatch, 'protocol version not supported');
    link.start();
    while (helloVersions().length < 4) await new Promise((r) => setTimeout(r, 5));
    expect(helloVersions().slice(0, 4)).toEqual([CAPABILITY_VERSION, 1, 1, 1]);
  });

  it('refuses a broker whose certificate does not match the pin, before sending anything', async () => {
    link.stop();
    const logs: string[] = [];
    let logged: () => void = () => undefined;
    const write = (line: string) => {
      logs.push(line);
      logged();
    };
    const log = pino({ level: 'warn' }, { write });
    link = new BrokerLink(linkOptions({ tls: brokerTlsOptions({ fingerprint: 'AB'.repeat(32) }), log }));
    link.start();
    while (!logs.some((l) => l.includes('pinned'))) await new Promise<void>((r) => (logged = r));
    expect(broker.connections).toBe(0);
    expect(broker.received).toEqual([]);
  });
});
