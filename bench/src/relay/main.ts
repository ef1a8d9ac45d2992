/**
 * `pnpm bench relay [--seconds 8] [--reps 7] [--kernel-forwarding auto|on|off] [--only tcp]` (root: builds a NAT
 * lab; needs iperf3). One run of: iperf3 TCP throughput over (a) a direct path (full cone ↔ full
 * cone), (b) the UDP relay (symmetric ↔ symmetric) in the relay's default mode, (c) the TCP fallback
 * (UDP-blocked ↔ full cone), then the relay restarted with its forwarding in the process (b'), each
 * with its ratio to direct; direct and relayed runs alternate and medians are compared, because one
 * run on shared cores is noisy. Also the CPU each relayed Gbit costs, and the highest small-packet
 * UDP rate carried with < 0.1 % loss over the relay and, as the baseline, over the direct path.
 * `--only tcp`: just the TCP fallback, `reps` runs (and one direct run for its ratio).
 */
import {
  AgentRunner,
  BrokerRunner,
  FullConeNat,
  Lab,
  RelayRunner,
  SymmetricNat,
  trellisBuild,
  UdpBlockedNat,
  waitFor,
  withTraffic,
} from '@trellis/e2e';
import { percentile, printTable } from '../stats';
import { cpuSeconds, machineBusySeconds, type TcpResult, tcpThroughput, udpAtRate } from './iperf';

const LISTEN_PORT = 51820;
const TARGET_UDP_RELAY_RATIO = 0.9;
/** Packet rates tried (64-byte datagrams), lowest first; the search stops at the first lossy one. */
const RATES = [5_000, 10_000, 20_000, 40_000, 80_000, 160_000];
const MAX_LOSS_PERCENT = 0.1;
const WARM_UP_SECONDS = 3;
const MODES = ['auto', 'on', 'off'] as const;
type Mode = (typeof MODES)[number];

function args(): { seconds: number; reps: number; mode: Mode; onlyTcp: boolean } {
  const a = process.argv.slice(2);
  const value = (flag: string) => (a.includes(flag) ? a[a.indexOf(flag) + 1] : undefined);
  const seconds = Number(value('--seconds') ?? 8);
  if (!Number.isInteger(seconds) || seconds < 2) throw new Error('--seconds takes a whole number >= 2');
  const reps = Number(value('--reps') ?? 7);
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps takes a whole number >= 1');
  const mode = MODES.find((m) => m === (value('--kernel-forwarding') ?? 'auto'));
  if (!mode) throw new Error('--kernel-forwarding takes auto, on or off');
  const only = value('--only');
  if (only !== undefined && only !== 'tcp') throw new Error('--only takes tcp');
  return { seconds, reps, mode, onlyTcp: only === 'tcp' };
}

interface Node {
  agent: AgentRunner;
  id: string;
  address: string;
}

/** One throughput run with the whole machine's CPU it took. */
interface Measured extends TcpResult {
  machineCpu: number;
  relayCpu: number;
}

/** Waits for the pair's path, pinging meanwhile: paths are made on demand, for traffic. */
async function waitPath(a: Node, b: Node, want: (path: string) => boolean, what: string): Promise<void> {
  await withTraffic(a.agent, b.address, () =>
    waitFor(
      async () => {
        const [sa, sb] = await Promise.all([a.agent.status(), b.agent.status()]);
        const pa = sa.peers.find((p) => p.id === b.id)?.path ?? 'none';
        const pb = sb.peers.find((p) => p.id === a.id)?.path ?? 'none';
        return want(pa) && want(pb);
      },
      { timeoutMs: 60_000, intervalMs: 300, what },
    ),
  );
}

async function maxLosslessRate(client: Node, server: Node, seconds: number): Promise<number> {
  let best = 0;
  for (const rate of RATES) {
    const r = await udpAtRate(client.agent, server.agent, server.address, rate, Math.min(seconds, 5));
    process.stderr.write(
      `  ${rate} pps offered: ${r.packetsPerSecond.toFixed(0)} sent, ${r.lostPercent}% lost\n`,
    );
    if (r.lostPercent > MAX_LOSS_PERCENT) break;
    best = r.packetsPerSecond;
  }
  return best;
}

const median = (xs: number[]) => percentile(xs, 50);
const gbit = (r: { bitsPerSecond: number }) => r.bitsPerSecond / 1e9;
/** CPU seconds per Gbit carried. */
const perGbit = (cpu: number, r: TcpResult) => cpu / ((r.bytes * 8) / 1e9);

async function main(): Promise<void> {
  const { seconds, reps, mode, onlyTcp } = args();
  const build = trellisBuild();
  const lab = await Lab.create();
  try {
    const host = await lab.addHost('brk', ['198.51.100.10', '198.51.100.11']);
    const broker = new BrokerRunner(lab, host, build, ['--reflector2', '198.51.100.11:41642']);
    // The relay sits on the NAT routers' own lab segment, as the routers are to each other: both
    // paths then cross the lab's bridge alone, and neither pays for the lab's internet namespace
    // routing between its subnets (same cores), which a real internet does elsewhere.
    const relayHost = await lab.addHost('rly', '192.0.2.200');
    const plan = (
      [
        ['fc1', new FullConeNat()],
        ['fc2', new FullConeNat()],
        ['sym1', new SymmetricNat()],
        ['sym2', new SymmetricNat()],
        ['ub', new UdpBlockedNat()],
      ] as const
    ).filter(([name]) => !onlyTcp || !name.startsWith('sym'));
    const sites = await Promise.all(plan.map(([name, kind]) => lab.addSite(name, kind, ['d'])));
    await broker.start();
    const token = await broker.createRelayToken('relay1');
    const relay = new RelayRunner(lab, relayHost, 'relay1', broker, token, build, { kernelForwarding: mode });
    await relay.start();
    const setupKey = await broker.createSetupKey();
    const nodes = new Map<string, Node>();
    for (const [i, site] of sites.entries()) {
      const agent = new AgentRunner(lab, site.device('d'), LISTEN_PORT, build);
      await agent.start();
      await agent.up({ broker: broker.url, setupKey, caFile: broker.certFile });
      const self = await agent.waitConnected().then((s) => s.self);
      nodes.set(plan[i]![0], { agent, id: self.id, address: self.address });
    }
    const n = (name: string) => nodes.get(name)!;
    await waitPath(n('fc1'), n('fc2'), (p) => p.startsWith('direct'), 'fc1 ↔ fc2 direct');
    if (!onlyTcp) await waitPath(n('sym1'), n('sym2'), (p) => p === 'relay', 'sym1 ↔ sym2 relayed');
    await waitPath(n('ub'), n('fc2'), (p) => p === 'relay', 'ub ↔ fc2 relayed (TCP)');

    const measure = async (from: Node, to: Node): Promise<Measured> => {
      const [machine0, relay0] = [machineBusySeconds(), cpuSeconds(relay.pid!)];
      const r = await tcpThroughput(from.agent, to.agent, to.address, seconds);
      return { ...r, machineCpu: machineBusySeconds() - machine0, relayCpu: cpuSeconds(relay.pid!) - relay0 };
    };
    /**
     * Direct and relayed runs in pairs, the order swapped every pair, after a short warm-up of both
     * (discarded): the machine drifts (other tenants, the lab settling), so each relayed run is
     * compared with the direct run next to it.
     */
    const alternate = async (label: string) => {
      const direct: Measured[] = [];
      const relayed: Measured[] = [];
      process.stderr.write(`warm-up: direct and ${label}, ${WARM_UP_SECONDS} s each\n`);
      await tcpThroughput(n('fc1').agent, n('fc2').agent, n('fc2').address, WARM_UP_SECONDS);
      await tcpThroughput(n('sym1').agent, n('sym2').agent, n('sym2').address, WARM_UP_SECONDS);
      for (let i = 0; i < reps; i++) {
        const directFirst = i % 2 === 0;
        process.stderr.write(
          `TCP throughput ${i + 1}/${reps}: ${directFirst ? `direct, then ${label}` : `${label}, then direct`}\n`,
        );
        if (!directFirst) relayed.push(await measure(n('sym1'), n('sym2')));
        direct.push(await measure(n('fc1'), n('fc2')));
        if (directFirst) relayed.push(await measure(n('sym1'), n('sym2')));
        process.stderr.write(
          `  direct ${gbit(direct[i]!).toFixed(3)}, ${label} ${gbit(relayed[i]!).toFixed(3)} Gbit/s\n`,
        );
      }
      return { direct, relayed };
    };
    if (onlyTcp) {
      process.stderr.write(`warm-up: TCP fallback, ${WARM_UP_SECONDS} s\n`);
      await tcpThroughput(n('ub').agent, n('fc2').agent, n('fc2').address, WARM_UP_SECONDS);
      const direct = await measure(n('fc1'), n('fc2'));
      const runs: Measured[] = [];
      for (let i = 0; i < reps; i++) {
        runs.push(await measure(n('ub'), n('fc2')));
        process.stderr.write(`  TCP fallback ${i + 1}/${reps}: ${gbit(runs[i]!).toFixed(3)} Gbit/s\n`);
      }
      printTable(
        `relay: iperf3 TCP over the overlay, ${seconds} s × ${reps} TCP fallback runs, one direct; Gbit/s medians`,
        ['path', 'Gbit/s', 'ratio to direct', 'runs (Gbit/s)'],
        [
          ['direct (fc ↔ fc)', gbit(direct), 1, gbit(direct).toFixed(3)],
          [
            'TCP fallback (ub ↔ fc)',
            median(runs.map(gbit)),
            median(runs.map(gbit)) / gbit(direct),
            runs.map((r) => gbit(r).toFixed(3)).join(' '),
          ],
        ],
      );
      printTable(
        'relay CPU (medians)',
        ['measure', 'value'],
        [
          ['machine CPU s per Gbit, TCP fallback', median(runs.map((m) => perGbit(m.machineCpu, m)))],
          ['relay process CPU s per Gbit, TCP fallback', median(runs.map((m) => perGbit(m.relayCpu, m)))],
        ],
      );
      console.log(`lab logs: ${lab.runDir}`);
      return;
    }
    const kernelOn = relay.logLines().some((l) => l.includes('kernel forwarding on'));
    const defaultLabel = kernelOn ? 'UDP relay (kernel)' : 'UDP relay (process)';
    const first = await alternate(defaultLabel);
    process.stderr.write('TCP throughput: TCP fallback\n');
    const tcpFallback = await measure(n('ub'), n('fc2'));
    process.stderr.write('small-packet UDP: direct\n');
    const ppsDirect = await maxLosslessRate(n('fc1'), n('fc2'), seconds);
    process.stderr.write(`small-packet UDP: ${defaultLabel}\n`);
    const ppsRelay = await maxLosslessRate(n('sym1'), n('sym2'), seconds);

    let processPhase: Awaited<ReturnType<typeof alternate>> | undefined;
    let ppsProcess: number | undefined;
    if (kernelOn) {
      // The same pairs with the relay forwarding in its process (restarted: allocations come back).
      relay.opts.kernelForwarding = 'off';
      await relay.stop();
      await relay.start();
      await waitPath(n('sym1'), n('sym2'), (p) => p === 'relay', 'sym1 ↔ sym2 relayed again');
      processPhase = await alternate('UDP relay (process)');
      process.stderr.write('small-packet UDP: UDP relay (process)\n');
      ppsProcess = await maxLosslessRate(n('sym1'), n('sym2'), seconds);
    }

    const directMedian = median(first.direct.map(gbit));
    /** The median of each relayed run's ratio to the direct run of its pair. */
    const pairedRatio = (phase: { direct: Measured[]; relayed: Measured[] }) =>
      median(phase.relayed.map((r, i) => gbit(r) / gbit(phase.direct[i]!)));
    const row = (label: string, runs: Measured[], ratio: number) => [
      label,
      median(runs.map(gbit)),
      ratio,
      runs.map((r) => gbit(r).toFixed(3)).join(' '),
    ];
    const rows = [
      row('direct (fc ↔ fc)', first.direct, 1),
      row(`${defaultLabel} (sym ↔ sym)`, first.relayed, pairedRatio(first)),
      row('TCP fallback (ub ↔ fc)', [tcpFallback], gbit(tcpFallback) / directMedian),
    ];
    if (processPhase) {
      rows.push(row('  direct, again (fc ↔ fc)', processPhase.direct, 1));
      rows.push(row('UDP relay (process) (sym ↔ sym)', processPhase.relayed, pairedRatio(processPhase)));
    }
    printTable(
      `relay: iperf3 TCP over the overlay, ${seconds} s × ${reps} paired runs; Gbit/s medians, ratio = median of each run's ratio to the direct run of its pair (target: UDP relay ≥ ${TARGET_UDP_RELAY_RATIO}× direct)`,
      ['path', 'Gbit/s', 'ratio to direct', 'runs (Gbit/s)'],
      rows,
    );
    const cpuRow = (label: string, runs: Measured[], pick: (m: Measured) => number) => [
      label,
      median(runs.map((m) => perGbit(pick(m), m))),
    ];
    const cpuRows = [
      cpuRow('machine CPU s per Gbit, direct', first.direct, (m) => m.machineCpu),
      cpuRow(`machine CPU s per Gbit, ${defaultLabel}`, first.relayed, (m) => m.machineCpu),
      cpuRow(`relay process CPU s per Gbit, ${defaultLabel}`, first.relayed, (m) => m.relayCpu),
    ];
    if (processPhase) {
      cpuRows.push(cpuRow('machine CPU s per Gbit, direct again', processPhase.direct, (m) => m.machineCpu));
      cpuRows.push(
        cpuRow('machine CPU s per Gbit, UDP relay (process)', processPhase.relayed, (m) => m.machineCpu),
      );
      cpuRows.push(
        cpuRow('relay process CPU s per Gbit, UDP relay (process)', processPhase.relayed, (m) => m.relayCpu),
      );
    }
    cpuRows.push(cpuRow('relay process CPU s per Gbit, TCP fallback', [tcpFallback], (m) => m.relayCpu));
    cpuRows.push(['max lossless rate direct (pps)', ppsDirect]);
    cpuRows.push([`max lossless rate, ${defaultLabel} (pps)`, ppsRelay]);
    if (ppsProcess !== undefined) cpuRows.push(['max lossless rate, UDP relay (process) (pps)', ppsProcess]);
    printTable(
      `relay CPU (medians; the machine's every core, so the relay's share is the difference to direct) and packet rate (64-byte UDP, loss < ${MAX_LOSS_PERCENT} %)`,
      ['measure', 'value'],
      cpuRows,
    );
    const ratio = pairedRatio(first);
    console.log(
      `${defaultLabel} ≥ ${TARGET_UDP_RELAY_RATIO}× direct: ${ratio >= TARGET_UDP_RELAY_RATIO ? 'met' : 'NOT met'} (${ratio.toFixed(2)}×)`,
    );
    console.log(`lab logs: ${lab.runDir}`);
  } finally {
    await lab.destroy();
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
