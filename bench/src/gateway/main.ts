/**
 * `pnpm bench gateway [--seconds 5] [--reps 5] [--runs 10] [--cases kill,crash,link]` (root: builds a NAT
 * lab; needs iperf3). Not run in CI.
 *  1. iperf3 TCP from a client to a LAN host behind a gateway (subnet route, the gateway
 *     masquerades) and to another LAN host registered as a virtual device (the client dials its
 *     mesh address, the gateway DNATs it), each as a ratio to the direct mesh path from the same
 *     client to the gateway itself in the same run (goal ≥ 0.9): the three paths run in rotating
 *     order per repetition, the median of each repetition's ratio counts.
 *  2. Failover: two gateways serve the route; a UDP probe every 100 ms from the client to the LAN
 *     host; `--runs` times per case, the primary fails (`kill`: SIGKILL its trellisd, wireguard-go
 *     lives on; `crash`: SIGKILL trellisd and wireguard-go; `link`: its LAN interface down) and
 *     comes back. Prints p50/p99 of the time from the failure to the first probe the standby
 *     carried, of the longest outage, of the return to the primary and of the outage on return.
 *  site g (full cone): gw1, gw2 on LAN 192.168.1.0/24 (h .100; v .101, the virtual device `cam`
 *  behind gw1); site c (full cone): c
 */
import {
  AgentRunner,
  addVirtualDevice,
  BrokerRunner,
  FullConeNat,
  Lab,
  LanSegment,
  RoutesApi,
  startUdpEcho,
  tcpConnects,
  tcpListen,
  trellisBuild,
  trellisSet,
  UdpProbe,
  waitFor,
} from '@trellis/e2e';
import { percentile, printTable } from '../stats';
import { type TcpRun, tcpRun } from './iperf';

const LISTEN_PORT = 51820;
const LAN = '192.168.1.0/24';
const TARGET_RATIO = 0.9;
const FAILOVER_GOAL_MS = 10_000;
/** A run whose traffic has not moved by then counts as failed (no figure). */
const SWITCH_TIMEOUT_MS = 60_000;
const CASES = ['kill', 'crash', 'link'] as const;
type Case = (typeof CASES)[number];
const LABELS: Record<Case, string> = {
  kill: "primary's trellisd SIGKILLed",
  crash: 'primary crashed (trellisd + wireguard-go)',
  link: "primary's LAN link down",
};

function args(): { seconds: number; reps: number; runs: number; cases: Case[] } {
  const a = process.argv.slice(2);
  const value = (flag: string) => (a.includes(flag) ? a[a.indexOf(flag) + 1] : undefined);
  const whole = (flag: string, def: number, min: number) => {
    const n = Number(value(flag) ?? def);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} takes a whole number >= ${min}`);
    return n;
  };
  const cases = (value('--cases') ?? CASES.join(',')).split(',');
  const unknown = cases.filter((c) => !(CASES as readonly string[]).includes(c));
  if (unknown.length > 0) throw new Error(`--cases: unknown ${unknown.join(',')}; known: ${CASES.join(',')}`);
  return {
    seconds: whole('--seconds', 5, 2),
    reps: whole('--reps', 5, 1),
    runs: whole('--runs', 10, 1),
    cases: cases as Case[],
  };
}

const gbit = (r: TcpRun) => r.bitsPerSecond / 1e9;
const median = (xs: number[]) => percentile(xs, 50);

interface FailoverRun {
  switchMs: number | null;
  outageMs: number;
  lost: number;
  backMs: number | null;
  backOutageMs: number;
}

async function main(): Promise<void> {
  const { seconds, reps, runs, cases } = args();
  const build = trellisBuild();
  const lab = await Lab.create();
  try {
    const brokerHost = await lab.addHost('brk', '198.51.100.10');
    const [g, c] = await Promise.all([
      lab.addSite('g', new FullConeNat(), ['gw1', 'gw2']),
      lab.addSite('c', new FullConeNat(), ['c']),
    ]);
    const lan = await LanSegment.create(lab, 'lan', 1);
    await lan.attachGateway(g.device('gw1'));
    await lan.attachGateway(g.device('gw2'));
    const h = await lan.addHost('h');
    const v = await lan.addHost('v');
    await startUdpEcho(lab, h.ns, [`${h.address}:7000`]);
    await tcpListen(v.ns, 5202, 'v-5202');
    const broker = new BrokerRunner(lab, brokerHost, build);
    await broker.start();
    const api = await RoutesApi.signIn(broker);
    const key = await broker.createSetupKey();
    const agents = new Map<string, AgentRunner>();
    const overlay = new Map<string, string>();
    for (const d of [g.device('gw1'), g.device('gw2'), c.device('c')]) {
      const agent = new AgentRunner(lab, d, LISTEN_PORT, build);
      await agent.start();
      await agent.up({ broker: broker.url, setupKey: key, caFile: broker.certFile });
      overlay.set(d.name, (await agent.waitConnected()).self.address);
      agents.set(d.name, agent);
    }
    const agent = (n: string) => agents.get(n)!;
    // gw1 first: the longest-serving gateway is the primary.
    await trellisSet(agent('gw1'), ['--advertise-routes', LAN]);
    await api.waitRow('gw1', LAN, (r) => r.advertised, 'advertised');
    await trellisSet(agent('gw2'), ['--advertise-routes', LAN]);
    await api.waitRow('gw2', LAN, (r) => r.advertised, 'advertised');
    await api.setApproved('gw1', [LAN]);
    await api.setApproved('gw2', [LAN]);
    await api.waitRow('gw1', LAN, (r) => r.primary, 'primary');

    const via = (n: string) => lan.gatewayAddress(agent(n).device);
    const probe = await UdpProbe.start(lab, agent('c').device.ns, { address: h.address, port: 7000 });
    const through = async (n: string, since: number, timeoutMs = SWITCH_TIMEOUT_MS) =>
      waitFor(() => probe.carriedBy(via(n), since), {
        timeoutMs,
        intervalMs: 50,
        what: `probes through ${n}`,
      });
    await through('gw1', Date.now(), 90_000);
    // v as a virtual device behind gw1 (no policy: the account's default lets c reach it).
    const cam = await addVirtualDevice(broker, { name: 'cam', lanAddress: v.address, gateway: 'gw1' });
    await waitFor(() => tcpConnects(agent('c').device.ns, cam.address, 5202, 2), {
      timeoutMs: 90_000,
      what: `c → cam (${cam.address}) tcp 5202 through gw1`,
    });

    // 1. Throughput: subnet route (c → h through gw1) and virtual device (c → cam's mesh address,
    // DNATed by gw1 to v) against the mesh path (c → gw1).
    const cNs = agent('c').device.ns;
    const gwNs = agent('gw1').device.ns;
    const legs = {
      direct: (t: number) => tcpRun(cNs, gwNs, overlay.get('gw1')!, t),
      routed: (t: number) => tcpRun(cNs, h.ns, h.address, t),
      virtual: (t: number) => tcpRun(cNs, v.ns, cam.address, t, v.address),
    };
    type Leg = keyof typeof legs;
    const order: Leg[] = ['direct', 'routed', 'virtual'];
    process.stderr.write(`warm-up: every path, 2 s each\n`);
    for (const leg of order) await legs[leg](2);
    const tcp: Record<Leg, TcpRun[]> = { direct: [], routed: [], virtual: [] };
    for (let i = 0; i < reps; i++) {
      // Rotate the order so no path always runs first (or right after another).
      for (let k = 0; k < order.length; k++) {
        const leg = order[(i + k) % order.length]!;
        tcp[leg].push(await legs[leg](seconds));
      }
      process.stderr.write(
        `TCP ${i + 1}/${reps}: mesh to gw1 ${gbit(tcp.direct[i]!).toFixed(3)}, subnet route ${gbit(tcp.routed[i]!).toFixed(3)}, virtual device ${gbit(tcp.virtual[i]!).toFixed(3)} Gbit/s\n`,
      );
    }
    const ratioOf = (leg: Leg) => median(tcp[leg].map((r, i) => gbit(r) / gbit(tcp.direct[i]!)));
    const ratio = ratioOf('routed');
    const vdRatio = ratioOf('virtual');
    const row = (label: string, leg: Leg, r: number) => [
      label,
      median(tcp[leg].map(gbit)),
      r,
      tcp[leg].map((x) => gbit(x).toFixed(3)).join(' '),
    ];
    printTable(
      `gateway: iperf3 TCP, ${seconds} s × ${reps} rotating runs of each path; Gbit/s medians, ratio = median of each repetition's ratio to the mesh path (target: ≥ ${TARGET_RATIO}× the mesh path to the gateway)`,
      ['path', 'Gbit/s', 'ratio', 'runs (Gbit/s)'],
      [
        row('mesh: c → gw1', 'direct', 1),
        row('subnet route: c → gw1 → h', 'routed', ratio),
        row('virtual device: c → cam (gw1 DNAT) → v', 'virtual', vdRatio),
      ],
    );

    // 2. Failover, `runs` times per case.
    const results = new Map<Case, FailoverRun[]>();
    for (const kase of cases) {
      const out: FailoverRun[] = [];
      for (let i = 0; i < runs; i++) {
        await through('gw1', Date.now(), 90_000);
        const at = Date.now();
        if (kase === 'kill') await agent('gw1').kill();
        else if (kase === 'crash') await agent('gw1').crash();
        else await lan.setGatewayLink(agent('gw1').device, false);
        const switched = await through('gw2', at).then(
          () => true,
          () => false,
        );
        await new Promise((r) => setTimeout(r, 1_000));
        const f = probe.figures(at, via('gw2'), Date.now() - 500);
        const backAt = Date.now();
        if (kase === 'link') await lan.setGatewayLink(agent('gw1').device, true);
        else await agent('gw1').start();
        const back = await through('gw1', backAt, 90_000).then(
          () => probe.replies().find((r) => r.sentAt >= backAt && r.via === via('gw1'))!.sentAt - backAt,
          () => null,
        );
        await new Promise((r) => setTimeout(r, 1_000));
        const b = probe.figures(backAt, via('gw1'), Date.now() - 500);
        const run: FailoverRun = {
          switchMs: switched ? f.switchMs : null,
          outageMs: f.outageMs,
          lost: f.lost,
          backMs: back,
          backOutageMs: b.outageMs,
        };
        out.push(run);
        process.stderr.write(
          `failover ${kase} ${i + 1}/${runs}: to gw2 ${run.switchMs ?? 'never'} ms, outage ${run.outageMs} ms (${run.lost} lost), back to gw1 ${run.backMs ?? 'never'} ms (outage ${run.backOutageMs} ms)\n`,
        );
      }
      results.set(kase, out);
    }
    await probe.stop();
    const rows: Array<Array<string | number>> = [];
    for (const [kase, out] of results) {
      const ok = out.map((r) => r.switchMs).filter((x): x is number => x !== null);
      const back = out.map((r) => r.backMs).filter((x): x is number => x !== null);
      const outage = out.map((r) => r.outageMs);
      const backOutage = out.map((r) => r.backOutageMs);
      const label = LABELS[kase];
      rows.push([label, 'to standby', percentile(ok, 50), percentile(ok, 99), `${ok.length}/${out.length}`]);
      rows.push([
        '',
        'longest outage',
        percentile(outage, 50),
        percentile(outage, 99),
        `${out.length}/${out.length}`,
      ]);
      rows.push([
        '',
        'back to primary',
        percentile(back, 50),
        percentile(back, 99),
        `${back.length}/${out.length}`,
      ]);
      rows.push([
        '',
        'outage on return',
        percentile(backOutage, 50),
        percentile(backOutage, 99),
        `${out.length}/${out.length}`,
      ]);
    }
    printTable(
      `gateway failover: UDP probe every 100 ms, ms from the failure (goal: the standby carries traffic within ${FAILOVER_GOAL_MS} ms)`,
      ['case', 'measure', 'p50 ms', 'p99 ms', 'runs ok'],
      rows,
    );
    console.log(
      `subnet route ≥ ${TARGET_RATIO}× mesh path: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'} (${ratio.toFixed(2)}×)`,
    );
    console.log(
      `virtual device ≥ ${TARGET_RATIO}× mesh path: ${vdRatio >= TARGET_RATIO ? 'met' : 'NOT met'} (${vdRatio.toFixed(2)}×)`,
    );
    for (const [kase, out] of results) {
      const ok = out.map((r) => r.switchMs).filter((x): x is number => x !== null);
      const p99 = percentile(ok, 99);
      const met = ok.length === out.length && p99 <= FAILOVER_GOAL_MS;
      console.log(
        `failover (${kase}) within ${FAILOVER_GOAL_MS} ms at p99: ${met ? 'met' : 'NOT met'} (${p99} ms)`,
      );
    }
    console.log(`lab logs: ${lab.runDir}`);
  } finally {
    await lab.destroy();
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
