import { ipv4InCidr, OVERLAY_PREFIX } from '@trellis/proto';
import { allows, type NormalizedPolicy, type PeerAllowance, spansCover } from './policy';
import type { CommandRunner } from './runner';

// Cutting flows a policy change forbids, on Linux. The input chain already judges every packet a
// peer sends, so a forbidden flow stops at once; deleting its conntrack entry is what lets the
// output chain reset this device's end too. Only entries whose ORIGINAL direction is peer → this
// device are touched (`-s PEER -d SELF`), so flows this device started are never cut, and a peer's
// still-allowed TCP flows are deleted only when the tool cannot single them out.
//
// UDP entries are left alone on purpose: after a delete, the local socket's next datagram would
// re-create the flow as if this device had started it, and the peer's datagrams would then pass as
// replies. Kept, the entry stays peer → device and every datagram of it keeps being dropped.

export type CutProto = 'tcp' | 'icmp';
const CUT_PROTOS: readonly CutProto[] = ['tcp', 'icmp'];

export interface ConntrackFlow {
  proto: string;
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
}

export interface CutPlan {
  /** Delete all of the peer's entries of that protocol toward this device: it may open none now. */
  bulk: Array<{ peer: string; proto: CutProto }>;
  /** Peers whose flows must be listed and judged one by one; 'all' when the old policy is unknown. */
  audit: 'all' | string[];
}

export interface CutOutcome {
  cut: number;
  error?: string;
}

/** The original-direction tuple of each line of `conntrack -L` (with or without `-o extended`). */
export function parseConntrackList(stdout: string): ConntrackFlow[] {
  const flows: ConntrackFlow[] = [];
  for (const line of stdout.split('\n')) {
    const m = /(?:^|\s)(tcp|udp|icmp|udplite|sctp|dccp|gre|unknown)\s+\d+\s/.exec(line);
    const src = /\bsrc=(\S+)/.exec(line);
    const dst = /\bdst=(\S+)/.exec(line);
    if (!m || !src || !dst) continue;
    const sport = /\bsport=(\d+)/.exec(line);
    const dport = /\bdport=(\d+)/.exec(line);
    flows.push({
      proto: m[1]!,
      src: src[1]!,
      dst: dst[1]!,
      ...(sport ? { sport: Number(sport[1]) } : {}),
      ...(dport ? { dport: Number(dport[1]) } : {}),
    });
  }
  return flows;
}

/** Whether `after` forbids something of `proto` that `before` allowed. */
function narrowed(before: PeerAllowance, after: PeerAllowance | undefined, proto: CutProto): boolean {
  if (after?.all) return false;
  if (proto === 'icmp') return (before.all || before.icmp) && !after?.icmp;
  if (before.all) return !spansCover(after?.tcp ?? [], [[0, 65535]]);
  return !spansCover(after?.tcp ?? [], before.tcp);
}

/** What to cut going from `before` (undefined: unknown, e.g. after a restart) to `after`. */
export function planCut(before: NormalizedPolicy | undefined, after: NormalizedPolicy): CutPlan {
  if (!before || before.selfAddress !== after.selfAddress) return { bulk: [], audit: 'all' };
  const next = new Map(after.peers.map((p) => [p.address, p]));
  const plan: CutPlan = { bulk: [], audit: [] };
  for (const old of before.peers) {
    const now = next.get(old.address);
    for (const proto of CUT_PROTOS) {
      if (!narrowed(old, now, proto)) continue;
      if (!allows(now, proto)) plan.bulk.push({ peer: old.address, proto });
      else if (Array.isArray(plan.audit)) plan.audit.push(old.address);
    }
  }
  return plan;
}

/** How many entries a `conntrack -D` reported deleted. */
export function deletedCount(stderr: string): number {
  const m = /(\d+) flow entries have been deleted/.exec(stderr);
  return m ? Number(m[1]) : 0;
}

/** Runs a plan. Never throws: a missing tool or a failure ends up in `error`. */
export async function cutFlows(
  run: CommandRunner,
  bin: string,
  plan: CutPlan,
  after: NormalizedPolicy,
): Promise<CutOutcome> {
  const self = after.selfAddress;
  let cut = 0;
  const del = async (args: string[]) => {
    const r = await run(bin, ['-D', ...args]);
    const n = deletedCount(r.stderr);
    // conntrack exits 1 when nothing matched; that is not a failure here.
    if (r.code !== 0 && n === 0 && !/0 flow entries/.test(r.stderr)) {
      throw new Error(`conntrack -D ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    cut += n;
  };
  try {
    for (const { peer, proto } of plan.bulk) await del(['-s', peer, '-d', self, '-p', proto]);
    if (plan.audit === 'all' || plan.audit.length > 0) {
      const listed = await run(bin, ['-L', '-d', self]);
      if (listed.code !== 0) {
        throw new Error(`conntrack -L failed (exit ${listed.code}): ${listed.stderr.trim()}`);
      }
      const audited = plan.audit === 'all' ? null : new Set(plan.audit);
      const peers = new Map(after.peers.map((p) => [p.address, p]));
      const done = new Set<string>();
      for (const f of parseConntrackList(listed.stdout)) {
        if (f.dst !== self || f.src === self || !ipv4InCidr(f.src, OVERLAY_PREFIX)) continue;
        if (audited && !audited.has(f.src)) continue;
        if (f.proto !== 'tcp' && f.proto !== 'icmp') continue;
        const allowance = peers.get(f.src);
        if (allows(allowance, f.proto, f.proto === 'tcp' ? f.dport : undefined)) continue;
        if (!allows(allowance, f.proto)) {
          const key = `${f.src} ${f.proto}`;
          if (!done.has(key)) await del(['-s', f.src, '-d', self, '-p', f.proto]);
          done.add(key);
        } else if (f.sport !== undefined && f.dport !== undefined) {
          await del(['-s', f.src, '-d', self, '-p', 'tcp', '--sport', `${f.sport}`, '--dport', `${f.dport}`]);
        }
      }
    }
    return { cut };
  } catch (err) {
    return { cut, error: err instanceof Error ? err.message : String(err) };
  }
}
