import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateSetupKeyResponse, PolicyApplyResult } from '@trellis/proto';
import type { LabProcess } from '../lab-process';
import type { Namespace } from '../namespace';
import { type BrokerRunner, parseJson } from './broker';

/**
 * Access control in the lab (issue 11): the broker's policy and tag commands, and what the agent's
 * firewall (`table inet trellis`) holds inside a device's namespace.
 */

/** The account BrokerRunner's devices enroll into. */
export const LAB_ACCOUNT = 'default';

let policySeq = 0;

/**
 * `trellis-broker policy apply FILE --json`. Returns the result, `startedAt` (the command was
 * started) and `returnedAt`, the moment it returned (what "within N s of apply" is measured from).
 */
export async function applyPolicy(
  broker: BrokerRunner,
  text: string,
): Promise<PolicyApplyResult & { startedAt: number; returnedAt: number }> {
  policySeq += 1;
  const file = join(broker.dataDir, `lab-policy-${policySeq}.json`);
  writeFileSync(file, text);
  const startedAt = Date.now();
  const out = await broker.admin([
    'policy',
    'apply',
    file,
    '--data-dir',
    broker.dataDir,
    '--account',
    LAB_ACCOUNT,
    '--json',
  ]);
  const returnedAt = Date.now();
  return { ...parseJson(out, PolicyApplyResult, 'policy apply --json'), startedAt, returnedAt };
}

/** A reusable setup key whose devices get `tags` and, with `cidr`, an address in that policy block. */
export async function createAccessSetupKey(
  broker: BrokerRunner,
  opts: { tags?: string[]; cidr?: string },
): Promise<string> {
  const out = await broker.admin([
    'setup-keys',
    'create',
    '--data-dir',
    broker.dataDir,
    '--account',
    LAB_ACCOUNT,
    '--reusable',
    ...(opts.tags ?? []).flatMap((t) => ['--tag', t]),
    ...(opts.cidr !== undefined ? ['--cidr', opts.cidr] : []),
    '--json',
  ]);
  return parseJson(out, CreateSetupKeyResponse, 'setup-keys create --json').key;
}

/** `trellis-broker devices tag DEVICE TAGS…` (none: clears them). */
export async function tagDevice(broker: BrokerRunner, device: string, tags: string[]): Promise<void> {
  await broker.admin([
    'devices',
    'tag',
    device,
    ...tags,
    '--data-dir',
    broker.dataDir,
    '--account',
    LAB_ACCOUNT,
  ]);
}

/** `trellis-broker policy explain SRC DST --json`, for failure messages. */
export async function explainPolicy(broker: BrokerRunner, src: string, dst: string): Promise<string> {
  return broker.admin([
    'policy',
    'explain',
    src,
    dst,
    '--data-dir',
    broker.dataDir,
    '--account',
    LAB_ACCOUNT,
    '--json',
  ]);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The agent's table as the kernel holds it: named counters and the elements of each set. */
export interface TrellisTable {
  counters: Record<string, { packets: number; bytes: number }>;
  /** Set name → elements as nft prints them (`100.64.0.3 . tcp . 22`). */
  sets: Record<string, string[]>;
  /** The state set's comment: a digest of what the ruleset was built from. */
  stateHash: string | null;
}

/** Reads `table inet trellis` in `ns` (`nft -j`); null when there is none. */
export async function trellisTable(ns: Namespace): Promise<TrellisTable | null> {
  let json: string;
  try {
    json = (await ns.exec(['nft', '-j', 'list', 'table', 'inet', 'trellis'])).stdout;
  } catch (err) {
    if (/No such file or directory/.test((err as Error).message)) return null;
    throw err;
  }
  return tableFromJson(json);
}

/** `nft -j list table inet trellis` output as a TrellisTable. */
export function tableFromJson(json: string): TrellisTable {
  const table: TrellisTable = { counters: {}, sets: {}, stateHash: null };
  const doc: unknown = JSON.parse(json);
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  for (const item of items) {
    if (!isObject(item)) continue;
    const { counter, set } = item;
    if (isObject(counter) && typeof counter.name === 'string') {
      table.counters[counter.name] = {
        packets: Number(counter.packets) || 0,
        bytes: Number(counter.bytes) || 0,
      };
    }
    if (isObject(set) && typeof set.name === 'string') {
      const elems = Array.isArray(set.elem) ? set.elem : [];
      table.sets[set.name] = elems.map(elementText);
      const first: unknown = elems[0];
      if (
        set.name === 'state' &&
        isObject(first) &&
        isObject(first.elem) &&
        typeof first.elem.comment === 'string'
      ) {
        table.stateHash = first.elem.comment;
      }
    }
  }
  return table;
}

/** A set element of `nft -j` as nft's text prints it: `100.64.0.3`, `100.64.0.3 . tcp . 8000-8100`. */
export function elementText(e: unknown): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  if (!isObject(e)) return JSON.stringify(e);
  if (Array.isArray(e.concat)) return e.concat.map(elementText).join(' . ');
  if (Array.isArray(e.range)) return `${elementText(e.range[0])}-${elementText(e.range[1])}`;
  if (isObject(e.elem)) return elementText(e.elem.val);
  if (isObject(e.prefix)) return `${elementText(e.prefix.addr)}/${elementText(e.prefix.len)}`;
  return JSON.stringify(e);
}

/** Packets counted so far by the agent's `dropped` counter in `ns` (throws without the table). */
export async function droppedPackets(ns: Namespace): Promise<number> {
  const t = await trellisTable(ns);
  if (!t) throw new Error(`no table inet trellis in ${ns.name}`);
  return t.counters.dropped?.packets ?? 0;
}

/** Whether the agent's sets let `peer` in on anything at all (all, icmp or some port). */
export function mentionsPeer(t: TrellisTable, peer: string): boolean {
  return Object.entries(t.sets).some(
    ([name, elems]) => name !== 'state' && elems.some((e) => e === peer || e.startsWith(`${peer} `)),
  );
}

/** conntrack entries in `ns` whose original source is `src` (one line each). */
export async function conntrackFrom(ns: Namespace, src: string): Promise<string[]> {
  try {
    const { stdout } = await ns.exec(['conntrack', '-L', '-s', src]);
    return stdout.split('\n').filter((l) => l.trim() !== '');
  } catch (err) {
    // conntrack exits 1 when it listed nothing on some versions.
    if (/0 flow entries/.test((err as Error).message)) return [];
    throw err;
  }
}

/** `nft -s list ruleset` (no counters: stateless) without `table inet trellis`. */
export async function rulesetWithoutTrellis(ns: Namespace): Promise<string> {
  const { stdout } = await ns.exec(['nft', '-s', 'list', 'ruleset']);
  return stripTable(stdout, 'inet', 'trellis');
}

/** Removes one top-level `table FAMILY NAME { … }` block (nft prints it from column 0 to a `}` line). */
export function stripTable(ruleset: string, family: string, name: string): string {
  const lines = ruleset.split('\n');
  const out: string[] = [];
  let skipping = false;
  for (const line of lines) {
    if (!skipping && line === `table ${family} ${name} {`) {
      skipping = true;
      continue;
    }
    if (skipping) {
      if (line === '}') skipping = false;
      continue;
    }
    out.push(line);
  }
  return out.join('\n');
}

/**
 * For each named check: ms from `since` until a poll that found it true had finished (an upper
 * bound on when it became true), polled every `intervalMs`; null if it was still false after
 * `limitMs`. Checks run side by side; a throwing check counts as false.
 */
export async function timeEach(
  since: number,
  checks: Record<string, () => Promise<boolean>>,
  opts: { limitMs: number; intervalMs?: number },
): Promise<Record<string, number | null>> {
  const interval = opts.intervalMs ?? 50;
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      for (;;) {
        const ok = await check().catch(() => false);
        const now = Date.now();
        if (ok) return [name, now - since] as const;
        if (now - since > opts.limitMs) return [name, null] as const;
        await new Promise((r) => setTimeout(r, interval));
      }
    }),
  );
  return Object.fromEntries(entries);
}

/**
 * When the agent says it finished applying a netmap (its `mesh applied` log line: WireGuard and
 * firewall done) for the first time at or after `after`; null if it has not.
 */
export function meshAppliedAt(logLines: readonly string[], after: number): number | null {
  for (const line of logLines) {
    if (!line.includes('"msg":"mesh applied"')) continue;
    const t = Number(/"time":(\d+)/.exec(line)?.[1]);
    if (t >= after) return t;
  }
  return null;
}

/** One look at a device from inside its namespace, complete at `at` (ms since the epoch). */
export interface DeviceSample {
  at: number;
  /** `wg show IF peers` (base64 keys). */
  peers: string[];
  table: TrellisTable | null;
  /** `conntrack -L -s ADDRESS` lines, when the watcher was asked for an address. */
  conntrack: string[];
}

/**
 * Samples a device's WireGuard peers and `table inet trellis` (and optionally its conntrack
 * entries from one source) in a shell loop inside its namespace, every `intervalS`. Each sample is
 * stamped after it was read, so "the first sample showing X" bounds from above when X became true,
 * without the test process's own latency (which, under load, is most of a poll's).
 */
export class DeviceWatcher {
  private constructor(private readonly proc: LabProcess) {}

  static async start(
    ns: Namespace,
    ifname: string,
    opts: { conntrackFrom?: string; intervalS?: number; logName?: string } = {},
  ): Promise<DeviceWatcher> {
    const ct = opts.conntrackFrom ? `echo @@ct; conntrack -L -s ${opts.conntrackFrom} 2>/dev/null;` : '';
    const script =
      'while :; do ' +
      `echo @@peers; wg show ${ifname} peers 2>/dev/null; ` +
      'echo @@nft; nft -j list table inet trellis 2>/dev/null || echo null; ' +
      ct +
      `echo "@@at $(date +%s%3N)"; sleep ${opts.intervalS ?? 0.05}; done`;
    const proc = ns.spawn('sh', ['-c', script], { logName: opts.logName ?? `watch-${ns.name}` });
    const w = new DeviceWatcher(proc);
    await proc.waitForLine(/^@@at \d+$/, 30_000);
    return w;
  }

  samples(): DeviceSample[] {
    const out: DeviceSample[] = [];
    let cur: Omit<DeviceSample, 'at'> = { peers: [], table: null, conntrack: [] };
    let section = '';
    for (const line of this.proc.lines) {
      if (line.startsWith('#')) continue; // the lab's own header
      const at = /^@@at (\d+)$/.exec(line);
      if (at) {
        out.push({ ...cur, at: Number(at[1]) });
        cur = { peers: [], table: null, conntrack: [] };
        section = '';
      } else if (line.startsWith('@@')) {
        section = line.slice(2);
      } else if (section === 'peers' && line.trim() !== '') {
        cur.peers.push(line.trim());
      } else if (section === 'nft' && line.startsWith('{')) {
        cur.table = tableFromJson(line);
      } else if (section === 'ct' && line.trim() !== '') {
        cur.conntrack.push(line);
      }
    }
    return out;
  }

  /** The first sample stamped at or after `after` for which `pred` holds. */
  first(after: number, pred: (s: DeviceSample) => boolean): DeviceSample | null {
    return this.samples().find((s) => s.at >= after && pred(s)) ?? null;
  }

  latest(): DeviceSample | null {
    return this.samples().at(-1) ?? null;
  }

  stop(): Promise<void> {
    return this.proc.stop(2_000);
  }
}

/**
 * For each named check, the first sample of that name's watcher stamped at or after `after` that
 * passes it, as ms since `from` (negative: before `from`); null if none did within `limitMs`.
 */
export async function firstSampleTimes(
  watchers: Record<string, DeviceWatcher>,
  checks: Record<string, (s: DeviceSample) => boolean>,
  opts: { after: number; from: number; limitMs: number },
): Promise<Record<string, number | null>> {
  const names = Object.keys(checks);
  const hit = (n: string) => watchers[n]?.first(opts.after, checks[n]!) ?? null;
  const deadline = Date.now() + opts.limitMs;
  while (Date.now() < deadline && !names.every((n) => hit(n) !== null)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return Object.fromEntries(names.map((n) => [n, hit(n) === null ? null : hit(n)!.at - opts.from]));
}
