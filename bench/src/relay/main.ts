/**
 * `pnpm bench relay [--seconds 10] [--kernel-forwarding]` (root: builds a NAT lab; needs iperf3,
 * and conntrack for --kernel-forwarding). One run of:
 * iperf3 TCP throughput over (a) a direct path (full cone ↔ full cone), (b) the UDP relay (symmetric
 * ↔ symmetric), (c) the TCP fallback (UDP-blocked ↔ full cone), with ratios to direct; the relay's
 * CPU per Gbit forwarded; and the highest small-packet UDP rate carried with < 0.1 % loss over the
 * relay and, as the baseline from the same run, over the direct path.
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
} from '@trellis/e2e';
import { printTable } from '../stats';
import { cpuSeconds, tcpThroughput, udpAtRate } from './iperf';

const LISTEN_PORT = 51820;
const TARGET_UDP_RELAY_RATIO = 0.9;
/** Packet rates tried (64-byte datagrams), lowest first; the search stops at the first lossy one. */
const RATES = [5_000, 10_000, 20_000, 40_000, 80_000, 160_000];
const MAX_LOSS_PERCENT = 0.1;

function args(): { seconds: number; kernel: boolean } {
  const a = process.argv.slice(2);
  const i = a.indexOf('--seconds');
  const seconds = i >= 0 ? Number(a[i + 1]) : 10;
  if (!Number.isInteger(seconds) || seconds < 2) throw new Error('--seconds takes a whole number >= 2');
  return { seconds, kernel: a.includes('--kernel-forwarding') };
}

interface Node {
  agent: AgentRunner;
  id: string;
  address: string;
}

async function waitPath(a: Node, b: Node, want: (path: string) => boolean, what: string): Promise<void> {
  await waitFor(
    async () => {
      const [sa, sb] = await Promise.all([a.agent.status(), b.agent.status()]);
      const pa = sa.peers.find((p) => p.id === b.id)?.path ?? 'none';
      const pb = sb.peers.find((p) => p.id === a.id)?.path ?? 'none';
      return want(pa) && want(pb);
    },
    { timeoutMs: 60_000, intervalMs: 300, what },
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

async function main(): Promise<void> {
  const { seconds, kernel } = args();
  const build = trellisBuild();
  const lab = await Lab.create();
  try {
    const host = await lab.addHost('brk', ['198.51.100.10', '198.51.100.11']);
    const broker = new BrokerRunner(lab, host, build, ['--reflector2', '198.51.100.11:41642']);
    const relayHost = await lab.addHost('rly', '198.51.100.20');
    const plan = [
      ['fc1', new FullConeNat()],
      ['fc2', new FullConeNat()],
      ['sym1', new SymmetricNat()],
      ['sym2', new SymmetricNat()],
      ['ub', new UdpBlockedNat()],
    ] as const;
    const sites = await Promise.all(plan.map(([name, kind]) => lab.addSite(name, kind, ['d'])));
    await broker.start();
    const token = await broker.createRelayToken('relay1');
    const relay = new RelayRunner(lab, relayHost, 'relay1', broker, token, build, {
      kernelForwarding: kernel,
    });
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
    await waitPath(n('sym1'), n('sym2'), (p) => p === 'relay', 'sym1 ↔ sym2 relayed');
    await waitPath(n('ub'), n('fc2'), (p) => p === 'relay', 'ub ↔ fc2 relayed (TCP)');

    process.stderr.write('TCP throughput: direct\n');
    const direct = await tcpThroughput(n('fc1').agent, n('fc2').agent, n('fc2').address, seconds);
    process.stderr.write('TCP throughput: UDP relay\n');
    const cpu0 = cpuSeconds(relay.pid!);
    const udpRelay = await tcpThroughput(n('sym1').agent, n('sym2').agent, n('sym2').address, seconds);
    const relayCpu = cpuSeconds(relay.pid!) - cpu0;
    process.stderr.write('TCP throughput: TCP fallback\n');
    const tcpFallback = await tcpThroughput(n('ub').agent, n('fc2').agent, n('fc2').address, seconds);

    process.stderr.write('small-packet UDP: direct\n');
    const ppsDirect = await maxLosslessRate(n('fc1'), n('fc2'), seconds);
    process.stderr.write('small-packet UDP: relay\n');
    const ppsRelay = await maxLosslessRate(n('sym1'), n('sym2'), seconds);

    const gbit = (r: { bitsPerSecond: number }) => r.bitsPerSecond / 1e9;
    const ratio = (r: { bitsPerSecond: number }) => r.bitsPerSecond / direct.bitsPerSecond;
    const relayedGbit = (udpRelay.bytes * 8) / 1e9;
    printTable(
      `relay${kernel ? ' (--kernel-forwarding)' : ''}: iperf3 TCP over the overlay, ${seconds} s each, one run (target: UDP relay ≥ ${TARGET_UDP_RELAY_RATIO}× direct)`,
      ['path', 'Gbit/s', 'ratio to direct', 'retransmits'],
      [
        ['direct (fc ↔ fc)', gbit(direct), 1, direct.retransmits],
        ['UDP relay (sym ↔ sym)', gbit(udpRelay), ratio(udpRelay), udpRelay.retransmits],
        ['TCP fallback (ub ↔ fc)', gbit(tcpFallback), ratio(tcpFallback), tcpFallback.retransmits],
      ],
    );
    printTable(
      `relay CPU and packet rate (64-byte UDP datagrams, loss < ${MAX_LOSS_PERCENT} %)`,
      ['measure', 'value'],
      [
        [
          'relay CPU s per Gbit forwarded (UDP relay run)',
          relayedGbit > 0 ? relayCpu / relayedGbit : Number.NaN,
        ],
        ['relay CPU s during the UDP relay run', relayCpu],
        ['max lossless rate over the relay (pps)', ppsRelay],
        ['max lossless rate direct, same run (pps)', ppsDirect],
      ],
    );
    const met = ratio(udpRelay) >= TARGET_UDP_RELAY_RATIO;
    console.log(`UDP relay ≥ ${TARGET_UDP_RELAY_RATIO}× direct: ${met ? 'met' : 'NOT met'}`);
    console.log(`lab logs: ${lab.runDir}`);
  } finally {
    await lab.destroy();
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
