import type { StatusResponse } from '@trellis/proto';
import {
  AccessMesh,
  AgentRunner,
  applyPolicy,
  BrokerRunner,
  conntrackFrom,
  createAccessSetupKey,
  type DeviceSample,
  Lab,
  type LabProcess,
  PortForwardRouter,
  RoutedRouter,
  Steps,
  type StreamClient,
  startStreamClient,
  startStreamServer,
  type TrellisBuild,
  tagDevice,
  tcpConnects,
  tcpListen,
  trellisBuild,
  udpListen,
  udpSend,
  waitFor,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Access control (issue 11) on the real broker and agents: groups of tagged devices across three
 * sites, probed with real netcat and ping, then a policy change timed on every device it touches.
 *  site eng  (port-forward): e1 (tag:eng, from its setup key)
 *  site ops  (routed):       o1 (tag:ops, from its setup key), o2 (enrolled untagged, then
 *                            `devices tag o2 tag:ops`)
 *  site cams (port-forward): c1 (tag:cams, from its setup key)
 * v1: eng → ops on tcp 22, tcp 8000-8100 and udp 5353; ops → cams on tcp 554 and icmp; nobody
 * reaches eng. A forbidden probe must fail AND be counted by the destination's own `dropped`
 * counter in `table inet trellis`. v2: eng loses tcp 22 on ops and gains tcp 554 on cams.
 */
const ENFORCE_WITHIN_MS = 2_000;

const HEADER = `// Issue 11 lab policy
{
  "groups": {
    "group:eng": ["tag:eng"],
    "group:ops": ["tag:ops"],
    "group:cams": ["tag:cams"]
  },
  "tagOwners": { "tag:eng": [], "tag:ops": [], "tag:cams": [] },`;

const POLICY_V1 = `${HEADER}
  "rules": [
    // eng may reach ops on ssh, a port range and udp 5353
    { "src": ["group:eng"], "dst": ["group:ops"], "ports": ["tcp:22", "tcp:8000-8100", "udp:5353"] },
    { "src": ["group:ops"], "dst": ["group:cams"], "ports": ["tcp:554", "icmp"] }
  ]
}
`;

/** v2: eng loses ssh on ops (its flows there are cut) and gains rtsp on cams (new peers). */
const POLICY_V2 = `${HEADER}
  "rules": [
    { "src": ["group:eng"], "dst": ["group:ops"], "ports": ["tcp:8000-8100", "udp:5353"] },
    { "src": ["group:ops"], "dst": ["group:cams"], "ports": ["tcp:554", "icmp"] },
    { "src": ["group:eng"], "dst": ["group:cams"], "ports": ["tcp:554"] }
  ]
}
`;

describe('access control: groups and ports, enforced by the destination (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  const mesh = new AccessMesh(() => broker);
  const listeners: LabProcess[] = [];
  const streams: StreamClient[] = [];
  const steps = new Steps();
  const L = () => lab;
  const m = (name: string) => mesh.member(name);
  const ns = (name: string) => mesh.ns(name);
  const peerNamed = (st: StatusResponse, name: string) => st.peers.find((p) => p.name === name);

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    const [eng, ops, cams] = await Promise.all([
      theLab.addSite('eng', new PortForwardRouter([{ port: 51820, device: 'e1' }]), ['e1']),
      theLab.addSite('ops', new RoutedRouter(), ['o1', 'o2']),
      theLab.addSite('cams', new PortForwardRouter([{ port: 51820, device: 'c1' }]), ['c1']),
    ]);
    broker = new BrokerRunner(lab, brokerHost, build);
    for (const d of [eng.device('e1'), ops.device('o1'), ops.device('o2'), cams.device('c1')]) {
      mesh.add(new AgentRunner(theLab, d, 51820, build));
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...streams, ...listeners].map((p) => p.stop(2_000)));
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  async function stopListener(device: string, port: number): Promise<void> {
    const i = listeners.findIndex((p) => p.ns === ns(device).name && p.argv.includes(String(port)));
    if (i < 0) throw new Error(`no listener on ${device}:${port}`);
    await listeners.splice(i, 1)[0]!.stop(2_000);
  }

  labIt(
    L,
    'v1: allowed ports connect, forbidden ones are dropped by the destination, unrelated devices are not peers',
    async () => {
      await broker.start();
      const v1 = await applyPolicy(broker, POLICY_V1);
      expect(v1.version).toBeGreaterThanOrEqual(1);
      const [kEng, kOps, kCams, kPlain] = await Promise.all([
        createAccessSetupKey(broker, { tags: ['tag:eng'] }),
        createAccessSetupKey(broker, { tags: ['tag:ops'] }),
        createAccessSetupKey(broker, { tags: ['tag:cams'] }),
        createAccessSetupKey(broker, {}),
      ]);
      await Promise.all([...mesh.agents.values()].map((a) => a.start()));
      await mesh.enroll('e1', kEng);
      await mesh.enroll('o1', kOps);
      await mesh.enroll('c1', kCams);
      await mesh.enroll('o2', kPlain);
      // Untagged, o2 is in no rule: no peers at all. Tagged by an admin, it joins ops.
      expect((await mesh.agent('o2').status()).peers).toEqual([]);
      await tagDevice(broker, 'o2', ['tag:ops']);
      const devices = await broker.devices();
      expect(Object.fromEntries(devices.map((d) => [d.name, d.tags]))).toEqual({
        e1: ['tag:eng'],
        o1: ['tag:ops'],
        o2: ['tag:ops'],
        c1: ['tag:cams'],
      });
      await waitFor(
        async () => {
          const st = await mesh.agent('o2').status();
          return peerNamed(st, 'e1') && peerNamed(st, 'c1');
        },
        { timeoutMs: 30_000, what: 'o2, once tagged, to see e1 and c1' },
      );

      const o1 = m('o1').overlay;
      const e1 = m('e1').overlay;
      const c1 = m('c1').overlay;
      // Listeners on allowed and forbidden ports alike: a failed probe is the firewall, not a closed port.
      listeners.push(
        await tcpListen(ns('o1'), 22, 'nc-o1-22'),
        await tcpListen(ns('o1'), 23, 'nc-o1-23'),
        await tcpListen(ns('e1'), 22, 'nc-e1-22'),
        await tcpListen(ns('c1'), 554, 'nc-c1-554'),
        await tcpListen(ns('c1'), 555, 'nc-c1-555'),
      );
      const udpOk = await udpListen(ns('o1'), 5353, 'nc-o1-udp5353');
      const udpNo = await udpListen(ns('o1'), 5354, 'nc-o1-udp5354');
      listeners.push(udpOk, udpNo);

      // Allowed (each also makes the pair's path).
      await mesh.expectAllowed('e1 → o1 tcp 22', () => tcpConnects(ns('e1'), o1, 22));
      await mesh.expectAllowed('e1 → o1 udp 5353', async () => {
        const token = `u5353-${Date.now()}`;
        await udpSend(ns('e1'), o1, 5353, token);
        return udpOk.lines.includes(token);
      });
      await mesh.expectAllowed('o1 → c1 tcp 554', () => tcpConnects(ns('o1'), c1, 554));
      await mesh.expectAllowed('o1 → c1 ping', () => ns('o1').ping(c1));

      // Forbidden: each one fails and is counted by the destination's `dropped` counter.
      const forbidden: Array<[string, string, () => Promise<boolean>]> = [
        ['o1', 'e1 → o1 tcp 23', () => tcpConnects(ns('e1'), o1, 23)],
        [
          'o1',
          'e1 → o1 udp 5354',
          async () => {
            const token = `u5354-${Date.now()}`;
            await udpSend(ns('e1'), o1, 5354, token);
            await new Promise((r) => setTimeout(r, 500));
            return udpNo.lines.includes(token);
          },
        ],
        ['o1', 'e1 → o1 ping', () => ns('e1').ping(o1, { count: 2, waitS: 1 })],
        ['e1', 'o1 → e1 tcp 22 (nobody reaches eng)', () => tcpConnects(ns('o1'), e1, 22)],
        ['e1', 'o1 → e1 ping', () => ns('o1').ping(e1, { count: 2, waitS: 1 })],
        ['c1', 'o1 → c1 tcp 555', () => tcpConnects(ns('o1'), c1, 555)],
        ['o1', 'c1 → o1 tcp 22 (cams reach nothing)', () => tcpConnects(ns('c1'), o1, 22)],
        ['o1', 'c1 → o1 ping', () => ns('c1').ping(o1, { count: 2, waitS: 1 })],
      ];
      const drops: string[] = [];
      for (const [dst, what, probe] of forbidden) {
        drops.push(`${what}: ${await mesh.expectDropped(dst, what, probe)} packets dropped by ${dst}`);
      }
      process.stdout.write(`\naccess v1, forbidden probes:\n  ${drops.join('\n  ')}\n`);

      // Devices outside every rule do not even see each other: not in WireGuard, not in status.
      expect(await mesh.wgPeers('e1')).not.toContain(m('c1').key);
      expect(await mesh.wgPeers('c1')).not.toContain(m('e1').key);
      expect(await mesh.wgPeers('o1')).not.toContain(m('o2').key);
      expect(await mesh.wgPeers('o2')).not.toContain(m('o1').key);
      const [se1, so1, sc1] = await Promise.all(['e1', 'o1', 'c1'].map((n) => mesh.agent(n).status()));
      expect(peerNamed(se1!, 'c1')).toBeUndefined();
      expect(peerNamed(sc1!, 'e1')).toBeUndefined();
      expect(peerNamed(so1!, 'o2')).toBeUndefined();
      // Status shows both directions of the policy, as the broker sent them.
      const eng2ops = [
        {
          proto: 'tcp',
          ports: [
            [22, 22],
            [8000, 8100],
          ],
        },
        { proto: 'udp', ports: [[5353, 5353]] },
      ];
      expect(peerNamed(se1!, 'o1')?.access).toEqual({ in: [], out: eng2ops });
      expect(peerNamed(so1!, 'e1')?.access).toEqual({ in: eng2ops, out: [] });
      expect(peerNamed(so1!, 'c1')?.access).toEqual({
        in: [],
        out: [{ proto: 'tcp', ports: [[554, 554]] }, { proto: 'icmp' }],
      });
      expect(so1!.guard?.firewall).toEqual(expect.objectContaining({ backend: 'nftables', lastError: null }));
      steps.complete('v1');
    },
    300_000,
  );

  labIt(
    L,
    'v2 is enforced on every affected device within 2 s of `policy apply`; a flow it forbids is cut, an allowed one survives',
    async () => {
      steps.needs('v1');
      const e1 = m('e1').overlay;
      const o1 = m('o1').overlay;
      const c1 = m('c1').overlay;
      // nc's listener on o1:22 makes way for echo servers: one flow on 22 (forbidden by v2), one on 8080.
      await stopListener('o1', 22);
      const sshServer = await startStreamServer(ns('o1'), 22);
      listeners.push(sshServer, await startStreamServer(ns('o1'), 8080));
      const ssh = await startStreamClient(ns('e1'), o1, 22);
      const web = await startStreamClient(ns('e1'), o1, 8080);
      streams.push(ssh, web);

      const allowPorts = (x: DeviceSample) => x.table?.sets.allow_ports ?? [];
      const opsTookV2 = (x: DeviceSample) =>
        !allowPorts(x).includes(`${e1} . tcp . 22`) && allowPorts(x).includes(`${e1} . tcp . 8000-8100`);
      let since = 0;
      await mesh.timeChange(
        'access v2 in force (first sample from inside each namespace), ms after `policy apply` returned',
        ENFORCE_WITHIN_MS,
        async () => {
          const v2 = await applyPolicy(broker, POLICY_V2);
          since = v2.returnedAt;
          expect(v2.devicesChanged).toBe(4);
        },
        {
          // ops: e1 loses tcp 22, keeps 8000-8100
          o1: { viewer: 'o1', check: opsTookV2 },
          o2: { viewer: 'o2', check: opsTookV2 },
          // eng and cams become peers; cams lets e1 in on 554
          e1: { viewer: 'e1', check: (x) => x.peers.includes(m('c1').key) },
          c1: {
            viewer: 'c1',
            check: (x) => x.peers.includes(m('e1').key) && allowPorts(x).includes(`${e1} . tcp . 554`),
          },
        },
      );

      // The flow on 22 ends for the client (a reset); the one on 8080 keeps flowing.
      const cut = await waitFor(() => ssh.closed(), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'the tcp 22 flow to end',
      });
      await waitFor(() => Date.now() > since + 3_000, { intervalMs: 100 });
      const webRx = web.lastRx();
      process.stdout.write(
        `\naccess v2: the tcp 22 flow ended (${cut.why}) ${cut.at - since} ms after apply returned; ` +
          `the tcp 8080 flow last received ${webRx ? webRx.at - since : '-'} ms after (${webRx?.bytes} bytes so far)\n`,
      );
      expect(cut.at - since).toBeLessThanOrEqual(ENFORCE_WITHIN_MS);
      // o1's end of it is reset too, by its own output chain (its conntrack entry was deleted).
      const serverEnd = `closed ${e1}:${ssh.localPort} `;
      const serverClosed = await waitFor(() => sshServer.lines.find((l) => l.startsWith(serverEnd)), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: "o1's end of the tcp 22 flow to be reset",
      });
      expect(serverClosed.split(' ')[2]).toBe('ECONNRESET');
      expect(web.closed()).toBeNull();
      expect(webRx!.at).toBeGreaterThan(since + 2_000);
      const o1st = await mesh.agent('o1').status();
      expect(o1st.guard?.firewall?.lastApply).toEqual(expect.objectContaining({ mode: 'incremental' }));
      expect(o1st.guard?.firewall?.lastApply?.cut).toBeGreaterThanOrEqual(1);
      const established22 = (await conntrackFrom(ns('o1'), e1)).filter(
        (l) => /dport=22\b/.test(l) && /ESTABLISHED/.test(l),
      );
      expect(established22).toEqual([]);

      // And traffic agrees: ops drops 22 now, eng reaches cams on 554 and nothing else.
      await mesh.expectDropped('o1', 'e1 → o1 tcp 22 under v2', () => tcpConnects(ns('e1'), o1, 22));
      await mesh.expectAllowed('e1 → c1 tcp 554 under v2', () => tcpConnects(ns('e1'), c1, 554));
      await mesh.expectDropped('c1', 'e1 → c1 ping under v2', () =>
        ns('e1').ping(c1, { count: 2, waitS: 1 }),
      );
      const se1 = await mesh.agent('e1').status();
      expect(peerNamed(se1, 'c1')?.access).toEqual({ in: [], out: [{ proto: 'tcp', ports: [[554, 554]] }] });
    },
    300_000,
  );
});
