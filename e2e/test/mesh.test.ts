import {
  AgentRunner,
  BrokerRunner,
  type Device,
  Lab,
  PortForwardRouter,
  RoutedRouter,
  type Site,
  Steps,
  type TrellisBuild,
  trellisBuild,
  waitFor,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Acceptance scenario of issue 2 §5 against the built broker and agent:
 *  site a (port-forward, 10.1.0.0/24): a1 (UDP 51820 forwarded), a2 (UDP 51821 forwarded)
 *  site b (routed, 203.0.113.32/28):   b1, later b2 (the fifth device)
 *  site c (port-forward, 10.3.0.0/24): c1 (UDP 51820 forwarded)
 *  broker on 198.51.100.10:8443
 */
const PING_TIMEOUT_MS = 90_000;

interface Member {
  agent: AgentRunner;
  overlay: string;
  publicKey: string;
}

describe('mesh scenario (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let siteA: Site;
  let siteB: Site;
  let setupKey: string;
  const agents = new Map<string, AgentRunner>();
  const members = new Map<string, Member>();
  /** Each step needs the previous ones; a later failure names the step that broke. */
  const steps = new Steps();
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    siteA = await lab.addSite(
      'a',
      new PortForwardRouter([
        { port: 51820, device: 'a1' },
        { port: 51821, device: 'a2' },
      ]),
      ['a1', 'a2'],
    );
    siteB = await lab.addSite('b', new RoutedRouter(), ['b1', 'b2']);
    const siteC = await lab.addSite('c', new PortForwardRouter([{ port: 51820, device: 'c1' }]), ['c1']);
    broker = new BrokerRunner(lab, brokerHost, build);
    const ports: [Device, number][] = [
      [siteA.device('a1'), 51820],
      [siteA.device('a2'), 51821],
      [siteB.device('b1'), 51820],
      [siteB.device('b2'), 51820],
      [siteC.device('c1'), 51820],
    ];
    for (const [d, port] of ports) agents.set(d.name, new AgentRunner(lab, d, port, build));
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  function agent(name: string): AgentRunner {
    return agents.get(name)!;
  }

  async function join(names: string[]): Promise<void> {
    await Promise.all(names.map((n) => agent(n).start()));
    // Enroll one by one: concurrent enrollment is the broker's business, not this scenario's.
    for (const n of names) {
      await agent(n).up({ broker: broker.url, setupKey, caFile: broker.certFile });
    }
    for (const n of names) {
      const st = await waitFor(
        async () => {
          const s = await agent(n).status();
          return s.state === 'connected' && s.self !== null && s.interface.publicKey !== null ? s : null;
        },
        { timeoutMs: 60_000, what: `${n} connected to the broker` },
      );
      members.set(n, { agent: agent(n), overlay: st.self!.address, publicKey: st.interface.publicKey! });
    }
  }

  /** Every ordered pair pings over overlay addresses; the error lists every pair that did not. */
  async function expectFullMesh(names: string[]): Promise<void> {
    const pairs = names.flatMap((from) => names.filter((to) => to !== from).map((to) => [from, to] as const));
    const results = await Promise.all(
      pairs.map(async ([from, to]) => {
        const target = members.get(to)!.overlay;
        try {
          await waitFor(() => agent(from).device.ns.ping(target), {
            timeoutMs: PING_TIMEOUT_MS,
            intervalMs: 500,
          });
          return null;
        } catch {
          return `${from} → ${to} (${target})`;
        }
      }),
    );
    const failed = results.filter((r): r is string => r !== null);
    if (failed.length > 0) {
      const dumps = await Promise.all(
        names.map(
          async (n) =>
            `${n}: ${await describeWg(n)}${agent(n).running ? '' : `\n  trellisd EXITED:\n${agent(n).logTail()}`}`,
        ),
      );
      throw new Error(
        `no ping over the mesh for ${failed.length}/${pairs.length} pairs:\n  ${failed.join('\n  ')}\nWireGuard state:\n${dumps.join('\n')}`,
      );
    }
  }

  async function describeWg(name: string): Promise<string> {
    try {
      const dump = await agent(name).wg();
      const byKey = new Map([...members].map(([n, m]) => [m.publicKey, n]));
      const peers = dump.peers.map(
        (p) =>
          `${byKey.get(p.publicKey) ?? p.publicKey.slice(0, 8)}@${p.endpoint ?? '-'} hs=${p.latestHandshake} rx=${p.rxBytes}`,
      );
      return `port ${dump.listenPort}; peers ${peers.join(', ') || '(none)'}`;
    } catch (err) {
      return `wg show failed: ${(err as Error).message.split('\n')[0]}`;
    }
  }

  /**
   * The endpoint `viewer`'s WireGuard should use for `peer`: the LAN address inside one LAN, the
   * routed address of a routed site, the forwarded WAN port of a port-forwarding site.
   */
  function expectedEndpoint(viewer: string, peer: string): string {
    const v = agent(viewer).device;
    const p = agent(peer);
    if (v.site === p.device.site || p.device.site.kind.lan === 'public')
      return `${p.device.address}:${p.listenPort}`;
    return `${p.device.site.publicAddress}:${p.listenPort}`;
  }

  async function expectEndpoints(names: string[]): Promise<void> {
    const wrong: string[] = [];
    await waitFor(
      async () => {
        wrong.length = 0;
        for (const viewer of names) {
          const dump = await agent(viewer).wg();
          for (const peer of names.filter((n) => n !== viewer)) {
            const got = dump.peers.find((p) => p.publicKey === members.get(peer)!.publicKey);
            const want = expectedEndpoint(viewer, peer);
            if (got?.endpoint !== want)
              wrong.push(`${viewer} sees ${peer} at ${got ? got.endpoint : '(no peer)'}, expected ${want}`);
          }
        }
        return wrong.length === 0;
      },
      { timeoutMs: 30_000, what: 'expected WireGuard endpoints' },
    ).catch(() => {
      throw new Error(`wrong WireGuard endpoints:\n  ${wrong.join('\n  ')}`);
    });
  }

  labIt(
    L,
    'four devices (two on one LAN, two at other sites) enroll with one setup key and every pair pings',
    async () => {
      await broker.start();
      setupKey = await broker.createSetupKey();
      await join(['a1', 'a2', 'b1', 'c1']);
      const listed = await broker.devices();
      expect(listed.map((d) => d.name).sort()).toEqual(['a1', 'a2', 'b1', 'c1']);
      const overlays = [...members.values()].map((m) => m.overlay);
      expect(new Set(overlays).size).toBe(4);
      for (const o of overlays) expect(o).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./);
      await expectFullMesh(['a1', 'a2', 'b1', 'c1']);
      steps.complete('four');
    },
    300_000,
  );

  labIt(
    L,
    'WireGuard uses LAN endpoints inside a LAN and public/forwarded ones across sites',
    async () => {
      steps.needs('four');
      await expectEndpoints(['a1', 'a2', 'b1', 'c1']);
      // The agents report the same through `trellis status --json`.
      const st = await agent('a1').status();
      const a2 = st.peers.find((p) => p.name === 'a2');
      expect(a2?.endpoint).toBe(expectedEndpoint('a1', 'a2'));
      expect(a2?.lastHandshake).not.toBeNull();
      expect(a2?.rxBytes).toBeGreaterThan(0);
    },
    120_000,
  );

  labIt(
    L,
    'a fifth device joins and all five ping each other',
    async () => {
      steps.needs('four');
      await join(['b2']);
      await expectFullMesh(['a1', 'a2', 'b1', 'b2', 'c1']);
      await expectEndpoints(['a1', 'a2', 'b1', 'b2', 'c1']);
      steps.complete('five');
    },
    300_000,
  );

  labIt(
    L,
    "removing a device removes it from every peer's WireGuard configuration",
    async () => {
      steps.needs('five');
      const removedKey = members.get('b2')!.publicKey;
      await broker.removeDevice('b2');
      const others = ['a1', 'a2', 'b1', 'c1'];
      await waitFor(
        async () => {
          const dumps = await Promise.all(others.map((n) => agent(n).wg()));
          return dumps.every((d) => !d.peers.some((p) => p.publicKey === removedKey));
        },
        { timeoutMs: 30_000, what: "b2's key to leave every peer's `wg show`" },
      ).catch(async (err: Error) => {
        const state = await Promise.all(others.map(async (n) => `${n}: ${await describeWg(n)}`));
        throw new Error(`${err.message}\n${state.join('\n')}`);
      });
      expect((await broker.devices()).map((d) => d.name).sort()).toEqual(['a1', 'a2', 'b1', 'c1']);
      // …and only b2: every other member is still configured everywhere.
      for (const n of others) {
        const keys = new Set((await agent(n).wg()).peers.map((p) => p.publicKey));
        for (const o of others.filter((x) => x !== n)) expect(keys.has(members.get(o)!.publicKey)).toBe(true);
      }
      await agent('b2').stop();
      members.delete('b2');
      steps.complete('removed');
    },
    120_000,
  );

  labIt(
    L,
    'with the broker stopped, the existing mesh keeps working',
    async () => {
      steps.needs('removed');
      await broker.stop();
      expect(broker.running).toBe(false);
      await expectFullMesh(['a1', 'a2', 'b1', 'c1']);
      steps.complete('broker-down');
    },
    300_000,
  );

  labIt(
    L,
    'an agent restarted while the broker is down brings its mesh back from the saved netmap',
    async () => {
      steps.needs('broker-down');
      const a1 = agent('a1');
      await a1.stop();
      // Peers must now fail to reach a1, or the test would prove nothing.
      expect(await agent('b1').device.ns.ping(members.get('a1')!.overlay, { waitS: 1 })).toBe(false);
      await a1.start();
      const st = await waitFor(
        async () => {
          const s = await a1.status();
          return s.peers.length === 3 ? s : null;
        },
        { timeoutMs: 60_000, what: 'a1 to load its 3 peers from disk' },
      );
      expect(st.netmapSource).toBe('disk');
      expect(st.broker.connected).toBe(false);
      await expectFullMesh(['a1', 'a2', 'b1', 'c1']);
    },
    300_000,
  );
});
