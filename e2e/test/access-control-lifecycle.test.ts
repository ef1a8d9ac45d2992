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
  mentionsPeer,
  PortForwardRouter,
  RoutedRouter,
  Steps,
  type StreamClient,
  startStreamClient,
  startStreamServer,
  type TrellisBuild,
  tcpConnects,
  tcpListen,
  trellisBuild,
  trellisTable,
  udpSend,
  waitFor,
} from '../src';
import { labIt, requireRoot } from './support/lab-test';

/**
 * Access control (issue 11) over a device's life: removing a device takes it out of every peer's
 * WireGuard and firewall and cuts its flows (and only its flows); an agent killed with SIGKILL
 * leaves its rules enforcing, and once restarted touches nothing.
 *  site ops  (routed):       o1, o2 (tag:ops)
 *  site cams (port-forward): c1, c2 (tag:cams)
 * Policy: ops → cams on tcp 554 and icmp (ops devices do not see each other, nor cams each other).
 */
const ENFORCE_WITHIN_MS = 2_000;

const POLICY = `{
  "groups": { "group:ops": ["tag:ops"], "group:cams": ["tag:cams"] },
  "tagOwners": { "tag:ops": [], "tag:cams": [] },
  "rules": [{ "src": ["group:ops"], "dst": ["group:cams"], "ports": ["tcp:554", "icmp"] }]
}
`;

describe('access control: device removal and a crashed agent (real broker + agents)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let broker: BrokerRunner;
  const mesh = new AccessMesh(() => broker);
  const listeners: LabProcess[] = [];
  const streams: StreamClient[] = [];
  const servers = new Map<string, LabProcess>();
  const steps = new Steps();
  const L = () => lab;
  const m = (name: string) => mesh.member(name);
  const ns = (name: string) => mesh.ns(name);

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    const theLab = lab;
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    const [ops, cams] = await Promise.all([
      theLab.addSite('ops', new RoutedRouter(), ['o1', 'o2']),
      theLab.addSite(
        'cams',
        new PortForwardRouter([
          { port: 51820, device: 'c1' },
          { port: 51821, device: 'c2' },
        ]),
        ['c1', 'c2'],
      ),
    ]);
    broker = new BrokerRunner(lab, brokerHost, build);
    mesh.add(new AgentRunner(theLab, ops.device('o1'), 51820, build));
    mesh.add(new AgentRunner(theLab, ops.device('o2'), 51820, build));
    mesh.add(new AgentRunner(theLab, cams.device('c1'), 51820, build));
    mesh.add(new AgentRunner(theLab, cams.device('c2'), 51821, build));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...streams, ...listeners].map((p) => p.stop(2_000)));
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  labIt(
    L,
    "removing a device takes it out of every peer's WireGuard and firewall within 2 s and cuts its flows, only its",
    async () => {
      await broker.start();
      await applyPolicy(broker, POLICY);
      const [kOps, kCams] = await Promise.all([
        createAccessSetupKey(broker, { tags: ['tag:ops'] }),
        createAccessSetupKey(broker, { tags: ['tag:cams'] }),
      ]);
      await Promise.all([...mesh.agents.values()].map((a) => a.start()));
      for (const [name, key] of [
        ['o1', kOps],
        ['o2', kOps],
        ['c1', kCams],
        ['c2', kCams],
      ] as const) {
        await mesh.enroll(name, key);
      }
      // Echo servers on both cams; long-running flows o2 → c1, o2 → c2 and o1 → c1.
      for (const c of ['c1', 'c2']) {
        const server = await startStreamServer(ns(c), 554);
        servers.set(c, server);
        listeners.push(server);
        await mesh.expectAllowed(`o2 → ${c} tcp 554`, () => tcpConnects(ns('o2'), m(c).overlay, 554));
      }
      await mesh.expectAllowed('o1 → c1 tcp 554', () => tcpConnects(ns('o1'), m('c1').overlay, 554));
      const o2c1 = await startStreamClient(ns('o2'), m('c1').overlay, 554);
      const o2c2 = await startStreamClient(ns('o2'), m('c2').overlay, 554);
      const o1c1 = await startStreamClient(ns('o1'), m('c1').overlay, 554);
      streams.push(o2c1, o2c2, o1c1);
      const o2 = m('o2').overlay;
      // Before: both cams have o2 in WireGuard, let it in on 554 and icmp, and track its flows.
      for (const c of ['c1', 'c2']) {
        expect(await mesh.wgPeers(c)).toContain(m('o2').key);
        expect(mentionsPeer((await trellisTable(ns(c)))!, o2)).toBe(true);
        expect(await conntrackFrom(ns(c), o2)).not.toEqual([]);
      }
      // o1 and o2 (both ops) never were peers.
      expect(await mesh.wgPeers('o1')).not.toContain(m('o2').key);

      const gone = (x: DeviceSample) =>
        !x.peers.includes(m('o2').key) &&
        x.table !== null &&
        !mentionsPeer(x.table, o2) &&
        x.conntrack.length === 0;
      let since = 0;
      await mesh.timeChange(
        'device removal: o2 out of WireGuard, firewall and conntrack, ms after `devices remove` returned',
        ENFORCE_WITHIN_MS,
        async () => {
          await broker.removeDevice('o2');
          since = Date.now();
        },
        { c1: { viewer: 'c1', check: gone }, c2: { viewer: 'c2', check: gone } },
        { conntrackFrom: o2 },
      );
      // Each cam's end of o2's flow learns of the cut from its own next write (the output chain
      // resets it); o1's flow to c1 goes on.
      const resets: string[] = [];
      for (const [c, flow] of [
        ['c1', o2c1],
        ['c2', o2c2],
      ] as const) {
        const server = servers.get(c)!;
        const end = `closed ${o2}:${flow.localPort} `;
        const line = await waitFor(() => server.lines.find((l) => l.startsWith(end)), {
          timeoutMs: 10_000,
          intervalMs: 50,
          what: `${c}'s end of o2's flow to be reset`,
        });
        resets.push(`${c} ${line.split(' ')[2]} ${Number(line.split(' ')[3]) - since} ms`);
        const st = await mesh.agent(c).status();
        expect(st.guard?.firewall?.lastApply?.cut).toBeGreaterThanOrEqual(1);
        expect(st.peers.map((p) => p.name)).not.toContain('o2');
      }
      process.stdout.write(`\ndevice removal: the cams' ends of o2's flows: ${resets.join(', ')}\n`);
      await waitFor(() => Date.now() > since + 3_000, { intervalMs: 100 });
      expect(o1c1.closed()).toBeNull();
      expect(o1c1.lastRx()!.at).toBeGreaterThan(since + 2_000);
      const o1End = `closed ${m('o1').overlay}:${o1c1.localPort} `;
      expect(servers.get('c1')!.lines.filter((l) => l.startsWith(o1End))).toEqual([]);
      // The removed device left the mesh: its own rules went with its interface.
      await waitFor(async () => (await mesh.agent('o2').status()).state === 'needs-enrollment', {
        timeoutMs: 30_000,
        what: 'o2 to know it was removed',
      });
      expect(await trellisTable(ns('o2'))).toBeNull();
      await mesh.agent('o2').stop();
      steps.complete('removed');
    },
    300_000,
  );

  labIt(
    L,
    'fail closed: with its agent SIGKILLed the table stays and drops; restarted, its first apply changes nothing',
    async () => {
      steps.needs('removed');
      const c1 = m('c1').overlay;
      const agent = mesh.agent('c1');
      listeners.push(await tcpListen(ns('c1'), 555, 'nc-c1-555'));
      await mesh.expectDropped('c1', 'o1 → c1 tcp 555', () => tcpConnects(ns('o1'), c1, 555));
      const before = (await trellisTable(ns('c1')))!;
      expect(before.stateHash).not.toBeNull();

      await agent.kill();
      expect(agent.running).toBe(false);
      // The rules outlive the daemon (its orphaned wireguard-go still carries the tunnels).
      const orphaned = await trellisTable(ns('c1'));
      expect(orphaned?.stateHash).toBe(before.stateHash);
      expect(orphaned?.sets).toEqual(before.sets);
      await mesh.expectAllowed("o1 → c1 tcp 554 with c1's agent dead", () => tcpConnects(ns('o1'), c1, 554));
      await mesh.expectDropped('c1', "o1 → c1 tcp 555 with c1's agent dead", () =>
        tcpConnects(ns('o1'), c1, 555),
      );
      await mesh.expectDropped('c1', "o1 → c1 udp 5353 with c1's agent dead", async () => {
        await udpSend(ns('o1'), c1, 5353, 'forbidden');
        return false; // nothing listens: the destination's counter is the evidence
      });

      await agent.start();
      await agent.waitConnected();
      // Applied from the saved netmap, then from the broker's: the same rules both times.
      await waitFor(
        () =>
          agent
            .logLines()
            .some((l) => l.includes('"msg":"mesh applied"') && l.includes('"source":"snapshot"')),
        { timeoutMs: 60_000, what: "c1's mesh applied from the broker's netmap after the restart" },
      );
      const st = await agent.status();
      expect(st.guard?.firewall?.lastError).toBeNull();
      expect(st.guard?.firewall?.lastApply).toEqual(expect.objectContaining({ mode: 'none', cut: 0 }));
      expect(agent.logLines().filter((l) => l.includes('"msg":"firewall applied"'))).toEqual([]);
      const restarted = await trellisTable(ns('c1'));
      expect(restarted?.stateHash).toBe(before.stateHash);
      expect(restarted?.sets).toEqual(before.sets);
      await mesh.expectAllowed('o1 → c1 tcp 554 after the restart', () => tcpConnects(ns('o1'), c1, 554));
      await mesh.expectDropped('c1', 'o1 → c1 tcp 555 after the restart', () =>
        tcpConnects(ns('o1'), c1, 555),
      );
    },
    300_000,
  );
});
