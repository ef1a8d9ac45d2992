/**
 * `pnpm bench punch [--reps 20] [--kinds fc,ar,pr,sym,cgnat]` (root: builds a NAT lab).
 * For every pair of NAT kinds the issue expects to go direct, `--reps` cold starts of both agents
 * (see measureOnce), measured from both online to the first direct handshake. One lab, one broker, two sites per kind,
 * built once; only the pair being measured runs. Prints median and p99 per pair against the targets.
 */
import {
  AddressRestrictedNat,
  AgentRunner,
  BrokerRunner,
  CgnatChain,
  FullConeNat,
  firstLogTime,
  Lab,
  PortRestrictedNat,
  type RouterKind,
  SymmetricNat,
  sleep,
  trellisBuild,
  UpnpNat,
  waitFor,
} from '@trellis/e2e';
import { percentile, printTable } from '../stats';
import { expectDirect, type KindName, PUNCH_KINDS } from './kinds';

const LISTEN_PORT = 51820;
/** Give up on one repetition after this long (counted as a failure, not a time). */
const DIRECT_TIMEOUT_MS = 15_000;
const TARGET_MEDIAN_MS = 500;
const TARGET_P99_MS = 2_000;

const MAKE: Record<KindName, () => RouterKind> = {
  fc: () => new FullConeNat(),
  ar: () => new AddressRestrictedNat(),
  pr: () => new PortRestrictedNat(),
  sym: () => new SymmetricNat(),
  cgnat: () => new CgnatChain(new PortRestrictedNat()),
  upnp: () => new UpnpNat(),
};

function args(): { reps: number; kinds: KindName[] } {
  const a = process.argv.slice(2);
  const get = (flag: string) => {
    const i = a.indexOf(flag);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const reps = Number(get('--reps') ?? 20);
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps takes a whole number >= 1');
  const kinds = (get('--kinds') ?? PUNCH_KINDS.join(',')).split(',') as KindName[];
  const unknown = kinds.filter((k) => !PUNCH_KINDS.includes(k));
  if (unknown.length > 0)
    throw new Error(`unknown kinds ${unknown.join(',')}; known: ${PUNCH_KINDS.join(',')}`);
  return { reps, kinds };
}

interface Member {
  agent: AgentRunner;
  id: string;
}

/** First listen port handed out; every start takes the next, so NAT state is always cold. */
const FIRST_PORT = 40_000;
let nextPort = FIRST_PORT;

/**
 * One cold repetition: both agents stopped, their saved netmaps deleted and new WireGuard ports
 * chosen (a port the NATs never saw: no mapping, no conntrack entry), then started together. Measures
 * ms from both online (the later `broker connected`: the broker can only coordinate from then) to the
 * first direct handshake either side logs for the other; null on timeout.
 */
async function measureOnce(a: Member, b: Member): Promise<number | null> {
  await Promise.all([a.agent.stop(), b.agent.stop()]);
  for (const m of [a, b]) {
    m.agent.forgetSavedNetmap();
    m.agent.listenPort = nextPort++;
  }
  await Promise.all([a.agent.start(), b.agent.start()]);
  const directAt = (m: Member, peer: Member) =>
    firstLogTime(m.agent.logLines(), (o) => o.msg === 'path direct' && o.peerId === peer.id);
  const onlineAt = (m: Member) => firstLogTime(m.agent.logLines(), (o) => o.msg === 'broker connected');
  const first = () => {
    const t = [directAt(a, b), directAt(b, a)].filter((x): x is number => x !== null);
    return t.length > 0 ? Math.min(...t) : null;
  };
  const ok = await waitFor(async () => onlineAt(a) !== null && onlineAt(b) !== null && first() !== null, {
    timeoutMs: DIRECT_TIMEOUT_MS,
    intervalMs: 50,
    what: 'first direct handshake',
  }).catch(() => false);
  if (!ok) return null;
  return first()! - Math.max(onlineAt(a)!, onlineAt(b)!);
}

async function main(): Promise<void> {
  const { reps, kinds } = args();
  const build = trellisBuild();
  const lab = await Lab.create();
  try {
    const host = await lab.addHost('brk', ['198.51.100.10', '198.51.100.11']);
    const broker = new BrokerRunner(lab, host, build, ['--reflector2', '198.51.100.11:41642']);
    const plan = kinds.flatMap((kind) => [1, 2].map((n) => ({ kind, name: `${kind}${n}` })));
    const sites = await Promise.all(
      plan.map(async (p) => ({ ...p, site: await lab.addSite(p.name, MAKE[p.kind](), ['d']) })),
    );
    const members = new Map<string, Member>();
    await broker.start();
    const setupKey = await broker.createSetupKey();
    for (const s of sites) {
      const agent = new AgentRunner(lab, s.site.device('d'), LISTEN_PORT, build);
      await agent.start();
      await agent.up({ broker: broker.url, setupKey, caFile: broker.certFile });
      const self = await agent.waitConnected().then((s) => s.self);
      members.set(s.name, { agent, id: self.id });
      await agent.stop();
    }

    const rows: Array<Array<string | number>> = [];
    for (let i = 0; i < kinds.length; i++)
      for (let j = i; j < kinds.length; j++) {
        const x = kinds[i]!;
        const y = kinds[j]!;
        const label = `${x} ↔ ${y}`;
        if (!expectDirect(x, y)) {
          rows.push([label, 'relay', '-', '-', '-', 'not expected direct']);
          continue;
        }
        const a = members.get(`${x}1`)!;
        const b = members.get(x === y ? `${y}2` : `${y}1`)!;
        const times: number[] = [];
        let failed = 0;
        for (let r = 0; r < reps; r++) {
          const ms = await measureOnce(a, b);
          if (ms === null) failed += 1;
          else times.push(ms);
        }
        await Promise.all([a.agent.stop(), b.agent.stop()]);
        const median = percentile(times, 50);
        const p99 = percentile(times, 99);
        const met = failed === 0 && median < TARGET_MEDIAN_MS && p99 < TARGET_P99_MS;
        rows.push([label, `${times.length}/${reps}`, median, p99, Math.max(...times), met ? 'yes' : 'NO']);
        process.stderr.write(`${label}: median ${median} ms, p99 ${p99} ms, ${failed} failed\n`);
        await sleep(100);
      }
    printTable(
      `punch: ms from both agents online to the first direct handshake, ${reps} repetitions per pair ` +
        `(targets: median < ${TARGET_MEDIAN_MS} ms, p99 < ${TARGET_P99_MS} ms)`,
      ['pair', 'direct', 'median ms', 'p99 ms', 'max ms', 'targets met'],
      rows,
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
