import { join } from 'node:path';
import { EXIT_ROUTE } from '@trellis/proto';
import {
  AccessMesh,
  AgentRunner,
  BrokerRunner,
  describeCapture,
  gatewayStatus,
  type Host,
  Lab,
  NamespaceResolvConf,
  PacketCapture,
  PortForwardRouter,
  PortRestrictedNat,
  RoutesApi,
  type Site,
  Steps,
  startWhoami,
  type TrellisBuild,
  trellisBuild,
  trellisSet,
  UnboundResolver,
  type WhoamiServer,
  waitFor,
  whoami,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Exit nodes (issue 14): a client's internet traffic leaves from the exit node's public address;
 * when the exit node dies nothing leaks (a capture on the client's physical interface sees only
 * WireGuard and the control connection) and `trellis status` says why; clearing the exit node goes
 * back to the direct path.
 *  internet: brk, web (198.51.100.20, whoami on :80), isp (198.51.100.53, unbound: the client's
 *            resolver; www.example.net is web)
 *  site e (port-forward 51820): ex, the exit node
 *  site c (port-restricted NAT): cl, resolv.conf → isp
 * No policy: everything is allowed, the exit route included.
 */
const PATH_TIMEOUT_MS = 90_000;
const ISP_RESOLVER = '198.51.100.53';
const WEB_NAME = 'www.example.net';
/** How long the client keeps trying while its exit node is dead. */
const BLOCKED_TRY_MS = 6_000;

describe('gateways: exit node, fail closed, and back to direct (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  let brokerHost: Host;
  let api: RoutesApi;
  let server: WhoamiServer;
  let exitSite: Site;
  let clientSite: Site;
  let resolvConf: NamespaceResolvConf | undefined;
  let capture: PacketCapture | undefined;
  const mesh = new AccessMesh(() => broker, PATH_TIMEOUT_MS);
  const steps = new Steps();
  const L = () => lab;
  const byName = () => `http://${WEB_NAME}/`;

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    brokerHost = await lab.addHost('brk', '198.51.100.10');
    const web = await lab.addHost('web', '198.51.100.20');
    const isp = await lab.addHost('isp', ISP_RESOLVER);
    [exitSite, clientSite] = await Promise.all([
      theLab.addSite('e', new PortForwardRouter([{ port: 51820, device: 'ex' }]), ['ex']),
      theLab.addSite('c', new PortRestrictedNat(), ['cl']),
    ]);
    server = await startWhoami(lab, web.ns, web.address);
    await UnboundResolver.start(isp, join(lab.runDir, 'unbound'), {
      stubZone: 'trellis.internal',
      stubAddress: brokerHost.address,
      localData: { [WEB_NAME]: web.address },
    });
    resolvConf = new NamespaceResolvConf(clientSite.device('cl').ns);
    resolvConf.write(`nameserver ${ISP_RESOLVER}\noptions timeout:1 attempts:1\n`);
    broker = new BrokerRunner(lab, brokerHost, build);
    for (const d of [exitSite.device('ex'), clientSite.device('cl')]) {
      mesh.add(new AgentRunner(theLab, d, 51820, build));
    }
  }, 120_000);

  afterAll(async () => {
    await capture?.stop();
    await lab?.destroy();
    resolvConf?.remove();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  const cl = () => mesh.agent('cl');
  const clNs = () => mesh.ns('cl');

  async function startCapture(): Promise<PacketCapture> {
    capture ??= await PacketCapture.start(clNs(), {
      ifname: 'eth0',
      wireguardPort: cl().listenPort,
      controlAddresses: brokerHost.addresses,
      lan: clientSite.lan.prefix,
    });
    await capture.reset();
    return capture;
  }

  labIt(
    L,
    "a client using an approved exit node reaches the internet from the exit node's public address, DNS included",
    async () => {
      await broker.start();
      api = await RoutesApi.signIn(broker);
      const key = await broker.createSetupKey();
      await Promise.all([...mesh.agents.values()].map((x) => x.start()));
      await mesh.enroll('ex', key);
      await mesh.enroll('cl', key);
      // Direct first: the server sees the client's own site.
      expect(await whoami(clNs(), server.url)).toBe(clientSite.publicAddress);
      expect(await whoami(clNs(), byName())).toBe(clientSite.publicAddress);

      await trellisSet(mesh.agent('ex'), ['--advertise-exit-node']);
      expect(await api.waitRow('ex', EXIT_ROUTE, (r) => r.advertised, 'advertised')).toMatchObject({
        approved: false,
      });
      await api.setApproved('ex', [EXIT_ROUTE]);
      await api.waitRow('ex', EXIT_ROUTE, (r) => r.approved && r.primary, 'approved');

      await trellisSet(cl(), ['--exit-node', 'ex']);
      await waitFor(async () => (await whoami(clNs(), server.url, 2)) === exitSite.publicAddress, {
        timeoutMs: PATH_TIMEOUT_MS,
        what: "cl's request from ex's public address",
      }).catch(async (err: Error) => {
        throw new Error(
          `${err.message}\ncl gateway status: ${JSON.stringify((await cl().status()).gateway)}`,
        );
      });
      expect((await gatewayStatus(cl())).exitNode).toMatchObject({
        name: 'ex',
        state: 'active',
        allowLan: true,
      });

      // Through the exit node, names resolve and nothing goes out in clear.
      const cap = await startCapture();
      expect(await whoami(clNs(), byName())).toBe(exitSite.publicAddress);
      const r = await cap.read();
      process.stdout.write(`\ncl eth0 while the exit node is active: ${describeCapture(r)}\n`);
      expect(r.wireguard).toBeGreaterThan(0);
      expect({ dns: r.dns, other: r.other, ipv6: r.ipv6, leaks: r.leaks }).toEqual({
        dns: 0,
        other: 0,
        ipv6: 0,
        leaks: [],
      });
      steps.complete('active');
    },
    300_000,
  );

  labIt(
    L,
    "the exit node's agent is killed: status says blocked with a reason, and only WireGuard and the control connection leave the client",
    async () => {
      steps.needs('active');
      await mesh.agent('ex').kill();
      const blocked = await waitFor(
        async () => {
          const x = (await gatewayStatus(cl())).exitNode;
          return x?.state === 'blocked' ? x : null;
        },
        { timeoutMs: 30_000, what: 'cl status: exit node blocked' },
      );
      process.stdout.write(`\ncl status while ex is dead: ${JSON.stringify(blocked)}\n`);
      expect(blocked.name).toBe('ex');
      expect(blocked.reason ?? '').not.toBe('');

      const cap = await startCapture();
      const since = Date.now();
      let tries = 0;
      let answered = 0;
      // HTTP by address and by name (the resolver's DNS), ICMP, and DNS straight to the ISP's resolver.
      const attempts = [
        async () => (await whoami(clNs(), server.url, 1)) !== null,
        async () => (await whoami(clNs(), byName(), 1)) !== null,
        () => clNs().ping(server.address, { waitS: 1 }),
        () =>
          clNs()
            .exec(['dig', '+short', '+time=1', '+tries=1', `@${ISP_RESOLVER}`, WEB_NAME])
            .then(({ stdout }) => stdout.trim() !== ''),
      ];
      while (Date.now() - since < BLOCKED_TRY_MS) {
        for (const attempt of attempts) {
          tries += 1;
          if (await attempt().catch(() => false)) answered += 1;
        }
      }
      const r = await cap.read();
      process.stdout.write(
        `cl eth0 during ${BLOCKED_TRY_MS} ms of requests (${tries} tried, ${answered} answered): ${describeCapture(r)}\n`,
      );
      expect(server.requestsFrom(since)).not.toContain(clientSite.publicAddress);
      expect({ dns: r.dns, other: r.other, ipv6: r.ipv6, leaks: r.leaks }).toEqual({
        dns: 0,
        other: 0,
        ipv6: 0,
        leaks: [],
      });
      expect((await gatewayStatus(cl())).exitNode?.state).toBe('blocked');
      steps.complete('blocked');
    },
    300_000,
  );

  labIt(
    L,
    "`trellis set --exit-node ''` goes back to the direct path",
    async () => {
      steps.needs('blocked');
      await trellisSet(cl(), ['--exit-node', '']);
      await waitFor(async () => (await gatewayStatus(cl())).exitNode === null, {
        timeoutMs: 15_000,
        what: 'cl status: no exit node',
      });
      await waitFor(async () => (await whoami(clNs(), server.url, 2)) === clientSite.publicAddress, {
        timeoutMs: 15_000,
        what: "cl's request from its own site again",
      });
      expect(await whoami(clNs(), byName())).toBe(clientSite.publicAddress);
    },
    300_000,
  );
});
