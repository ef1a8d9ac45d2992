import {
  AgentRunner,
  applyPolicy,
  BrokerRunner,
  type Device,
  droppedPackets,
  type Host,
  Lab,
  type LabProcess,
  type Namespace,
  PortForwardRouter,
  RoutedRouter,
  rulesetWithoutTrellis,
  Steps,
  type TrellisBuild,
  tcpConnects,
  tcpListen,
  trellisBuild,
  trellisTable,
  waitFor,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Access control (issue 11), living with the host's own firewall: before `trellis up`, device h1
 * gets a Docker-style iptables-nft ruleset (DOCKER, DOCKER-USER and isolation chains, a published
 * port DNATed to a "container" namespace behind docker0, MASQUERADE for it) and a ufw-style
 * default-deny host firewall as its own nft table. Through `trellis up`, a policy change and
 * `trellis down`, everything outside `table inet trellis` stays byte for byte what it was
 * (`nft -s list ruleset`: stateless, so packet counters do not count as changes), and the host's
 * rules keep doing what they did.
 *  site home (routed): h1 (agent, docker, host firewall), n1 (a LAN neighbour, no agent)
 *  site peer (port-forward): p1 (agent)
 */
const PATH_TIMEOUT_MS = 90_000;
const CONTAINER_NET = '172.17.0.0/16';
const CONTAINER_IP = '172.17.0.2';
const PUBLISHED_PORT = 8080;
const INTERNET_PORT = 9000;

/** What `dockerd` leaves in iptables for one container publishing 80 as 8080. */
const DOCKER_RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s ${CONTAINER_NET} ! -o docker0 -j MASQUERADE
-A POSTROUTING -s ${CONTAINER_IP}/32 -d ${CONTAINER_IP}/32 -p tcp -m tcp --dport 80 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport ${PUBLISHED_PORT} -j DNAT --to-destination ${CONTAINER_IP}:80
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d ${CONTAINER_IP}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
`;

/** ufw-style: default deny in, ssh open, WireGuard's port open, the mesh interface left to Trellis. */
function hostFirewall(wgInterface: string, wgPort: number): string {
  return `table inet hostfw {
  counter refused { }
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iif lo accept
    tcp dport 22 accept
    udp dport ${wgPort} accept
    iifname "${wgInterface}" accept
    counter name "refused"
  }
}
`;
}

const POLICY_V1 = `{
  "tagOwners": {},
  "rules": [
    { "src": ["p1"], "dst": ["h1"], "ports": ["tcp:22", "icmp"] },
    { "src": ["h1"], "dst": ["p1"] }
  ]
}
`;
const POLICY_V2 = `{
  "tagOwners": {},
  "rules": [
    { "src": ["p1"], "dst": ["h1"], "ports": ["tcp:2200"] },
    { "src": ["h1"], "dst": ["p1"] }
  ]
}
`;

describe("access control: coexisting with Docker's iptables-nft rules and a host firewall", () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let h1: AgentRunner;
  let p1: AgentRunner;
  let n1: Device;
  let ctr: Namespace;
  /** The internet host the broker runs on; a listener there stands for "the internet". */
  let internetHost: Host;
  let before = '';
  const listeners: LabProcess[] = [];
  const overlay = new Map<string, string>();
  const steps = new Steps();
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    internetHost = brokerHost;
    const [home, peer] = await Promise.all([
      theLab.addSite('home', new RoutedRouter(), ['h1', 'n1']),
      theLab.addSite('peer', new PortForwardRouter([{ port: 51820, device: 'p1' }]), ['p1']),
    ]);
    broker = new BrokerRunner(lab, brokerHost, build);
    h1 = new AgentRunner(lab, home.device('h1'), 51820, build);
    p1 = new AgentRunner(lab, peer.device('p1'), 51820, build);
    n1 = home.device('n1');
    // A "container": its own namespace behind a docker0 bridge on h1.
    ctr = await lab.addNamespace('home-ctr');
    const host = h1.device.ns;
    await host.exec(['ip', 'link', 'add', 'docker0', 'address', '02:42:ac:11:00:01', 'type', 'bridge']);
    await host.exec(['ip', 'addr', 'add', '172.17.0.1/16', 'dev', 'docker0']);
    await host.exec(['ip', 'link', 'set', 'docker0', 'up']);
    await host.exec([
      'ip',
      'link',
      'add',
      'vethc',
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ctr.name,
    ]);
    await host.exec(['ip', 'link', 'set', 'vethc', 'master', 'docker0']);
    await host.exec(['ip', 'link', 'set', 'vethc', 'up']);
    await ctr.exec(['ip', 'addr', 'add', `${CONTAINER_IP}/16`, 'dev', 'eth0']);
    await ctr.exec(['ip', 'link', 'set', 'eth0', 'up']);
    await ctr.exec(['ip', 'route', 'add', 'default', 'via', '172.17.0.1']);
    await host.sysctl('net.ipv4.ip_forward', 1);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(listeners.map((p) => p.stop(2_000)));
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  const hostRefused = async () => {
    const { stdout } = await h1.device.ns.exec(['nft', '-j', 'list', 'counter', 'inet', 'hostfw', 'refused']);
    const c = (JSON.parse(stdout) as { nftables: Array<{ counter?: { packets: number } }> }).nftables.find(
      (x) => x.counter,
    );
    return c?.counter?.packets ?? 0;
  };

  /** A probe that must succeed: retried (bounded), as a user would, so a lost SYN is no failure. */
  async function eventually(what: string, probe: () => Promise<boolean>): Promise<void> {
    await waitFor(probe, { timeoutMs: PATH_TIMEOUT_MS, intervalMs: 250, what });
  }

  /** Everything the host's own rules did before Trellis, checked again. */
  async function expectHostRulesWork(when: string): Promise<void> {
    const h1Lan = h1.device.address;
    await eventually(`${when}: n1 → h1 tcp 22 (open in hostfw)`, () => tcpConnects(n1.ns, h1Lan, 22));
    const refusedBefore = await hostRefused();
    expect({ when, closed: await tcpConnects(n1.ns, h1Lan, 2222) }).toEqual({ when, closed: false });
    expect({ when, refusedMoved: (await hostRefused()) > refusedBefore }).toEqual({
      when,
      refusedMoved: true,
    });
    // Docker: the published port reaches the container (DNAT + FORWARD), and the container reaches
    // the internet (MASQUERADE).
    await eventually(`${when}: n1 → h1 tcp ${PUBLISHED_PORT} (published, DNAT to the container)`, () =>
      tcpConnects(n1.ns, h1Lan, PUBLISHED_PORT),
    );
    await eventually(`${when}: container → internet (MASQUERADE)`, () =>
      tcpConnects(ctr, internetHost.address, INTERNET_PORT),
    );
  }

  labIt(
    L,
    'Docker-style and ufw-style rules load before `trellis up` and work',
    async () => {
      const host = h1.device.ns;
      await host.exec(['iptables-nft-restore'], { input: DOCKER_RULES });
      await host.nft(hostFirewall(h1.ifname, h1.listenPort));
      listeners.push(
        await tcpListen(host, 22, 'nc-h1-22'),
        await tcpListen(host, 2222, 'nc-h1-2222'),
        await tcpListen(host, 2200, 'nc-h1-2200'),
        await tcpListen(ctr, 80, 'nc-ctr-80'),
        await tcpListen(internetHost.ns, INTERNET_PORT, 'nc-internet'),
      );
      await expectHostRulesWork('before trellis');
      before = await rulesetWithoutTrellis(host);
      expect(before).toContain('table ip nat {');
      expect(before).toContain('chain DOCKER-USER {');
      expect(before).toContain('table inet hostfw {');
      expect(before).not.toContain('table inet trellis');
      steps.complete('host-rules');
    },
    120_000,
  );

  labIt(
    L,
    'after `trellis up` and a policy change, the rules outside table inet trellis are byte-identical and still work',
    async () => {
      steps.needs('host-rules');
      const host = h1.device.ns;
      await broker.start();
      await applyPolicy(broker, POLICY_V1);
      const setupKey = await broker.createSetupKey();
      await Promise.all([h1.start(), p1.start()]);
      for (const a of [h1, p1]) {
        await a.up({ broker: broker.url, setupKey, caFile: broker.certFile });
        overlay.set(a.name, (await a.waitConnected()).self.address);
      }
      const h1ip = overlay.get('h1')!;
      const p1ip = overlay.get('p1')!;
      await waitFor(
        async () => (await trellisTable(host))?.sets.allow_ports?.includes(`${p1ip} . tcp . 22`),
        {
          timeoutMs: 30_000,
          what: "h1's table inet trellis with p1's tcp 22",
        },
      );
      // The mesh passes the host firewall (its interface is accepted there) and Trellis judges it.
      await waitFor(() => tcpConnects(p1.device.ns, h1ip, 22), {
        timeoutMs: PATH_TIMEOUT_MS,
        what: 'p1 → h1 tcp 22',
      });
      await eventually('p1 → h1 ping (icmp allowed by v1)', () => p1.device.ns.ping(h1ip));
      let drops = await droppedPackets(host);
      expect(await tcpConnects(p1.device.ns, h1ip, 2200)).toBe(false);
      expect(await droppedPackets(host)).toBeGreaterThan(drops);
      const { stdout: whole } = await host.exec(['nft', '-s', 'list', 'ruleset']);
      expect(whole).toContain('table inet trellis {');
      expect(await rulesetWithoutTrellis(host)).toBe(before);
      await expectHostRulesWork('trellis up');

      // A policy change: tcp 22 and icmp closed to p1, tcp 2200 opened.
      await applyPolicy(broker, POLICY_V2);
      await waitFor(
        async () => {
          const p = (await trellisTable(host))?.sets.allow_ports ?? [];
          return p.includes(`${p1ip} . tcp . 2200`) && !p.includes(`${p1ip} . tcp . 22`);
        },
        { timeoutMs: 30_000, intervalMs: 100, what: "h1's table to take policy v2" },
      );
      await eventually('p1 → h1 tcp 2200 under v2', () => tcpConnects(p1.device.ns, h1ip, 2200));
      drops = await droppedPackets(host);
      expect(await tcpConnects(p1.device.ns, h1ip, 22)).toBe(false);
      expect(await p1.device.ns.ping(h1ip, { count: 2, waitS: 1 })).toBe(false);
      expect(await droppedPackets(host)).toBeGreaterThan(drops);
      // h1 itself still reaches p1 (all allowed h1 → p1), through p1's own table.
      await eventually('h1 → p1 ping', () => h1.device.ns.ping(p1ip));
      expect(await rulesetWithoutTrellis(host)).toBe(before);
      await expectHostRulesWork('after a policy change');
      steps.complete('up');
    },
    300_000,
  );

  labIt(
    L,
    '`trellis down` removes table inet trellis and only it: the ruleset is byte-identical to before',
    async () => {
      steps.needs('up');
      const host = h1.device.ns;
      await h1.cli(['down']);
      await waitFor(async () => (await trellisTable(host)) === null, {
        timeoutMs: 30_000,
        what: "h1's table inet trellis to go",
      });
      const { stdout: whole } = await host.exec(['nft', '-s', 'list', 'ruleset']);
      expect(whole).toBe(before);
      await expectHostRulesWork('after trellis down');
    },
    120_000,
  );
});
