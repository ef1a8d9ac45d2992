import {
  AccessMesh,
  AgentRunner,
  applyPolicy,
  BrokerRunner,
  createAccessSetupKey,
  describeRoute,
  gatewayStatus,
  kernelRouteDevs,
  Lab,
  LanSegment,
  PortRestrictedNat,
  RoutedRouter,
  RoutesApi,
  routeGetDev,
  routeStatus,
  Steps,
  startUdpEcho,
  type TrellisBuild,
  tcpConnects,
  tcpListen,
  trellisBuild,
  trellisSet,
  udpPeer,
  waitFor,
  wgPeersWithPrefix,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Subnet routes (issue 14) on the real broker and agents: LAN hosts without an agent, reached from
 * another site over the mesh by their LAN addresses.
 *  site a (routed): gw1 (LAN 192.168.1.0/24: web1 .100, tcp 80 and 22), gw2 (tag:auto, LAN
 *                   192.168.2.0/24: h2 .100, UDP echo :7000, routes the mesh back via gw2)
 *  site b (port-restricted NAT): c1
 * The policy lets anyone reach tcp 80 on 192.168.1.0/24 and udp 7000 on 192.168.2.0/24, nothing
 * else, and auto-approves 192.168.2.0/24 for tag:auto. gw1's route waits for an admin.
 */
const LAN1 = '192.168.1.0/24';
const LAN2 = '192.168.2.0/24';
const PATH_TIMEOUT_MS = 90_000;
/** How long removing a route may take to reach the client before the test calls it stuck. */
const REMOVE_TIMEOUT_MS = 30_000;

const POLICY = `// issue 14 lab: routed destinations and an auto-approver
{
  "tagOwners": { "tag:auto": [] },
  "autoApprovers": { "routes": { "${LAN2}": ["tag:auto"] } },
  "rules": [
    { "src": ["*"], "dst": ["${LAN1}"], "ports": ["tcp:80"] },
    { "src": ["*"], "dst": ["${LAN2}"], "ports": ["udp:7000"] }
  ]
}
`;

describe('gateways: subnet routes, approval, policy and withdrawal (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let api: RoutesApi;
  let lan1: LanSegment;
  let lan2: LanSegment;
  const mesh = new AccessMesh(() => broker, PATH_TIMEOUT_MS);
  const steps = new Steps();
  const L = () => lab;
  const web1 = () => lan1.host('web1');
  const h2 = () => lan2.host('h2');

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    const [a, b] = await Promise.all([
      theLab.addSite('a', new RoutedRouter(), ['gw1', 'gw2']),
      theLab.addSite('b', new PortRestrictedNat(), ['c1']),
    ]);
    lan1 = await LanSegment.create(lab, 'lan1', 1);
    await lan1.attachGateway(a.device('gw1'));
    const w = await lan1.addHost('web1');
    await tcpListen(w.ns, 80, 'web1-80');
    await tcpListen(w.ns, 22, 'web1-22');
    lan2 = await LanSegment.create(lab, 'lan2', 2);
    await lan2.attachGateway(a.device('gw2'));
    const h = await lan2.addHost('h2');
    await h.routeOverlayVia(a.device('gw2'));
    await startUdpEcho(lab, h.ns, [`${h.address}:7000`]);
    broker = new BrokerRunner(lab, brokerHost, build);
    for (const d of [a.device('gw1'), a.device('gw2'), b.device('c1')]) {
      mesh.add(new AgentRunner(theLab, d, 51820, build));
    }
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  const c1 = () => mesh.agent('c1');
  const web80 = () => tcpConnects(mesh.ns('c1'), web1().address, 80, 2);

  /** The source address h2's echo saw for one datagram from c1, or null without an answer. */
  async function h2Sees(): Promise<string | null> {
    const got = await udpPeer(lab!, mesh.ns('c1'), {
      bind: 0,
      steps: [{ to: `${h2().address}:7000`, msg: { op: 'echo', id: 'x' } }],
      lingerMs: 1_000,
    });
    return got[0]?.data.observed?.split(':')[0] ?? null;
  }

  /** c1 holds nothing for `prefix`: no kernel route, no WireGuard peer with it, not installed. */
  async function c1HasNo(prefix: string): Promise<boolean> {
    const row = await routeStatus(c1(), prefix);
    return (
      (row === null || !row.installed) &&
      (await kernelRouteDevs(c1().device.ns, prefix)).length === 0 &&
      (await wgPeersWithPrefix(c1(), prefix)).length === 0
    );
  }

  /** Waits until c1 holds `prefix` through `gateway`: status, kernel route on its mesh interface, WireGuard. */
  async function expectInstalled(prefix: string, gateway: string): Promise<void> {
    await waitFor(
      async () => {
        const row = await routeStatus(c1(), prefix);
        const kernel = await kernelRouteDevs(c1().device.ns, prefix);
        const wg = await wgPeersWithPrefix(c1(), prefix);
        return (
          row?.installed === true &&
          row.via === gateway &&
          kernel.length === 1 &&
          kernel[0] === c1().ifname &&
          wg.length === 1 &&
          wg[0] === mesh.member(gateway).key
        );
      },
      { timeoutMs: 30_000, what: `c1 routes ${prefix} via ${gateway}` },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await describeRoute(c1(), prefix)}`);
    });
  }

  /** Times how long c1 takes to hold nothing for `prefix` after `change`; prints the figure. */
  async function expectRemoved(what: string, prefix: string, change: () => Promise<unknown>): Promise<void> {
    const t0 = Date.now();
    await change();
    await waitFor(() => c1HasNo(prefix), { timeoutMs: REMOVE_TIMEOUT_MS, intervalMs: 200, what }).catch(
      async (err: Error) => {
        throw new Error(`${err.message}\n${await describeRoute(c1(), prefix)}`);
      },
    );
    process.stdout.write(
      `\n${what}: gone from c1 (status, kernel, WireGuard) ${Date.now() - t0} ms after the change\n`,
    );
  }

  labIt(
    L,
    'a subnet route is pending until an admin approves it; then its LAN host is reached on the allowed port only',
    async () => {
      await broker.start();
      await applyPolicy(broker, POLICY);
      api = await RoutesApi.signIn(broker);
      const [plain, auto] = await Promise.all([
        createAccessSetupKey(broker, {}),
        createAccessSetupKey(broker, { tags: ['tag:auto'] }),
      ]);
      await Promise.all([...mesh.agents.values()].map((x) => x.start()));
      await mesh.enroll('c1', plain);
      await mesh.enroll('gw1', plain);
      await mesh.enroll('gw2', auto);

      await trellisSet(mesh.agent('gw1'), ['--advertise-routes', LAN1]);
      const pending = await api.waitRow('gw1', LAN1, (r) => r.advertised, 'advertised');
      expect(pending).toMatchObject({ approved: false, autoApproved: false, down: false, primary: false });
      await waitFor(
        async () =>
          (await gatewayStatus(mesh.agent('gw1'))).advertised.some(
            (r) => r.prefix === LAN1 && r.approved === false,
          ),
        { timeoutMs: 15_000, what: 'gw1 status: its route pending' },
      );
      // Pending: nobody routes to it.
      expect(await c1HasNo(LAN1)).toBe(true);
      expect(await web80()).toBe(false);

      await api.setApproved('gw1', [LAN1]);
      expect(await api.waitRow('gw1', LAN1, (r) => r.approved, 'approved')).toMatchObject({
        autoApproved: false,
        primary: true,
      });
      await mesh.expectAllowed('c1 → web1:80 through gw1', web80);
      await expectInstalled(LAN1, 'gw1');
      const row = await routeStatus(c1(), LAN1);
      expect(row?.gateways).toEqual([{ name: 'gw1', alive: true }]);
      // The policy opens tcp 80 only: ssh to the same host is dropped, though it listens (as gw1 sees).
      expect(await tcpConnects(mesh.ns('gw1'), web1().address, 22, 2)).toBe(true);
      expect(await tcpConnects(mesh.ns('c1'), web1().address, 22, 3)).toBe(false);
      expect(await web80()).toBe(true);
      // A subnet route moves nothing else: the internet still leaves c1 directly.
      expect(await routeGetDev(mesh.ns('c1'), '198.51.100.10')).toBe('eth0');
      steps.complete('approved');
    },
    300_000,
  );

  labIt(
    L,
    "the policy's autoApprovers approve a route at once; without masquerade the LAN host sees the client's mesh address",
    async () => {
      steps.needs('approved');
      await trellisSet(mesh.agent('gw2'), ['--advertise-routes', LAN2, '--snat-routes', 'false']);
      const row = await api.waitRow('gw2', LAN2, (r) => r.advertised && r.approved, 'auto-approved');
      expect(row.autoApproved).toBe(true);
      const seen = await waitFor(h2Sees, {
        timeoutMs: PATH_TIMEOUT_MS,
        what: 'c1 → h2 udp 7000 through gw2',
      });
      expect(seen).toBe(mesh.member('c1').overlay);
      await expectInstalled(LAN2, 'gw2');
      expect((await gatewayStatus(mesh.agent('gw2'))).prefs.snatRoutes).toBe(false);
      steps.complete('auto');
    },
    300_000,
  );

  labIt(
    L,
    'unapproving a route removes it everywhere: status, kernel route, WireGuard allowed IPs, reachability',
    async () => {
      steps.needs('approved');
      await expectRemoved('gw1 route unapproved (API)', LAN1, () => api.setApproved('gw1', []));
      expect(await web80()).toBe(false);
      expect(await api.row('gw1', LAN1)).toMatchObject({ advertised: true, approved: false, primary: false });
      await waitFor(
        async () =>
          (await gatewayStatus(mesh.agent('gw1'))).advertised.some(
            (r) => r.prefix === LAN1 && r.approved === false,
          ),
        { timeoutMs: 15_000, what: 'gw1 status: its route pending again' },
      );
      // The other gateway's route is untouched.
      expect(await h2Sees()).toBe(mesh.member('c1').overlay);
      steps.complete('unapproved');
    },
    300_000,
  );

  labIt(
    L,
    "the gateway withdrawing its route (`trellis set --advertise-routes ''`) removes it everywhere",
    async () => {
      steps.needs('unapproved');
      await api.setApproved('gw1', [LAN1]);
      await mesh.expectAllowed('c1 → web1:80 through gw1 again', web80);
      await expectInstalled(LAN1, 'gw1');
      await expectRemoved("gw1 withdrew its route (`trellis set --advertise-routes ''`)", LAN1, () =>
        trellisSet(mesh.agent('gw1'), ['--advertise-routes', '']),
      );
      expect(await web80()).toBe(false);
      // An admin's approval outlives the advertisement (it applies again when the route comes back).
      expect(await api.row('gw1', LAN1)).toMatchObject({ advertised: false, approved: true, primary: false });
      expect((await gatewayStatus(mesh.agent('gw1'))).advertised).toEqual([]);
      // gw2 withdraws too: its auto-approval goes with the advertisement.
      await expectRemoved('gw2 withdrew its route', LAN2, () =>
        trellisSet(mesh.agent('gw2'), ['--advertise-routes', '']),
      );
      expect(await h2Sees()).toBeNull();
      expect(await api.row('gw2', LAN2)).toBeNull();
    },
    300_000,
  );
});
