/**
 * Part 2: one broker, N connected simulated devices carrying the generated account's tags and
 * blocks under the generated 1,000-rule policy. Measured per affected device: the time from the
 * admin call to the arrival of what it must get, and that nobody else gets anything.
 *
 * - rule change: one rule between two role tags holding ~10% of the devices, adding a port no
 *   other rule opens (`policy.apply`), then taken out again; affected devices must get a `delta`.
 * - baseline, same run: one device gains a tag (`devices.tag`), then loses it; the device must get a
 *   `netmap`, every device that sees it before or after a `delta` naming it.
 * Who is affected is computed here with @trellis/policy (planPolicy / access), not asked of the broker.
 */
import {
  CompiledPolicy,
  type Policy,
  type PolicyDevice,
  type PortSet,
  parsePolicy,
  planPolicy,
} from '@trellis/policy';
import {
  API_PATHS,
  CAPABILITY_VERSION,
  type CreateSetupKeyResponse,
  type DeviceInfo,
  type EnrollResponse,
  type PolicyApplyResult,
} from '@trellis/proto';
import { next, pool } from '../child-ipc';
import { BrokerHttpClient } from '../http-client';
import { fastKeyPair } from '../keys';
import { nowMs } from '../stats';
import { type ChangeSample, judge, printSample } from './fanout-judge';
import { ALL_TAGS, type GenRule, generateAccount, policyText, rng } from './generate';
import type { BenchDevice, ClientReply } from './messages';
import { type BrokerStats, type PolicyBench, withPolicyBench } from './setup';

const ENROLL_CONCURRENCY = 32;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FanoutOptions {
  rules: number;
  rounds: number;
  settleMs: number;
  db: 'postgres' | 'embedded';
}

export type { ChangeSample };

export interface FanoutResult {
  n: number;
  classes: number;
  enrollPerSec: number;
  connectSec: number;
  connectRetries: number;
  snapshotMB: number;
  /** The rule added: its text, and how many devices hold either tag. */
  ruleText: string;
  designed: number;
  samples: ChangeSample[];
}

const p = (text: string): Policy => {
  const r = parsePolicy(text);
  if (!r.ok) throw new Error(`generated policy does not parse: ${r.errors[0]?.message}`);
  return r.policy;
};

const CHANGE_PORT = 4242;

/** Whether `s` opens tcp CHANGE_PORT already. */
const opensChangePort = (s: PortSet) => s.tcp.some(([a, b]) => a <= CHANGE_PORT && CHANGE_PORT <= b);

/**
 * How many devices a rule `a` -> `b` opening tcp CHANGE_PORT would affect: a device of `a` whose
 * access to some other device of `b` lacks the port (its `out` changes), and that device (its `in`).
 * Worked out per class pair; planPolicy gives the exact set for the pair finally chosen.
 */
function affectedCount(compiled: CompiledPolicy, devices: PolicyDevice[], a: string, b: string): number {
  const byClass = (tag: string) => {
    const m = new Map<number, string[]>();
    for (const d of devices) {
      if (!d.tags.includes(tag)) continue;
      const c = compiled.classOf(d.id)!;
      const list = m.get(c);
      if (list) list.push(d.id);
      else m.set(c, [d.id]);
    }
    return m;
  };
  const src = byClass(a);
  const dst = byClass(b);
  const hit = new Set<string>();
  for (const [ca, as] of src)
    for (const [cb, bs] of dst) {
      const from = as[0]!;
      const to = bs.find((id) => id !== from);
      if (to === undefined || opensChangePort(compiled.openSet(from, to))) continue;
      // Two devices of one class: each has the other as a peer; a class of one has none.
      for (const id of as) if (ca !== cb || as.length > 1) hit.add(id);
      for (const id of bs) if (ca !== cb || bs.length > 1) hit.add(id);
    }
  return hit.size;
}

/**
 * Two role tags for the changed rule: among pairs holding 5-25% of the fleet, the first (closest
 * to 10% first) whose rule would change the view of 5-15% of the devices; else the best seen.
 * Environment and site tags are left out: the change is between two kinds of machines.
 */
function pickRuleTags(
  compiled: CompiledPolicy,
  devices: PolicyDevice[],
): { a: string; b: string; holding: number; affected: number } {
  const counts = new Map<string, number>();
  for (const d of devices) for (const t of d.tags) counts.set(t, (counts.get(t) ?? 0) + 1);
  const tags = [...counts.keys()].filter((t) => !/^tag:(prod|staging|dev|test|qa|site-\d+)$/.test(t));
  const n = devices.length;
  const pairs: Array<{ a: string; b: string; holding: number }> = [];
  for (const a of tags)
    for (const b of tags) {
      if (a === b) continue;
      const holding = devices.filter((d) => d.tags.includes(a) || d.tags.includes(b)).length;
      if (holding >= n * 0.05 && holding <= n * 0.25) pairs.push({ a, b, holding });
    }
  pairs.sort((x, y) => Math.abs(x.holding - n / 10) - Math.abs(y.holding - n / 10));
  let best = { a: '', b: '', holding: 0, affected: 0 };
  for (const pair of pairs.slice(0, 60)) {
    const affected = affectedCount(compiled, devices, pair.a, pair.b);
    if (Math.abs(affected - n / 10) < Math.abs(best.affected - n / 10)) best = { ...pair, affected };
    if (affected >= n * 0.05 && affected <= n * 0.15) break;
  }
  if (best.a === '') throw new Error('no pair of role tags holds 5-25% of the devices');
  return best;
}

/** Enrolls the generated devices: one reusable setup key per (tags, block), created over the admin socket. */
async function enroll(
  bench: PolicyBench,
  http: BrokerHttpClient,
  wanted: Array<{ name: string; tags: string[]; block?: string }>,
): Promise<{ devices: BenchDevice[]; enrollPerSec: number }> {
  const keys = new Map<string, string>();
  for (const d of wanted) {
    const combo = `${[...d.tags].sort().join(',')}|${d.block ?? ''}`;
    if (keys.has(combo)) continue;
    const created = await bench.admin<CreateSetupKeyResponse>({
      op: 'setupKeys.create',
      account: bench.ready.account,
      name: `bench-${keys.size}`,
      reusable: true,
      tags: d.tags,
      ...(d.block ? { cidr: d.block } : {}),
    });
    keys.set(combo, created.key);
  }
  const pairs = wanted.map(() => fastKeyPair());
  const devices: BenchDevice[] = new Array(wanted.length);
  const t0 = nowMs();
  await pool(wanted, ENROLL_CONCURRENCY, async (d, i) => {
    const k = pairs[i]!;
    const r = await http.call<EnrollResponse>('POST', API_PATHS.enroll, {
      protocolVersion: CAPABILITY_VERSION,
      setupKey: keys.get(`${[...d.tags].sort().join(',')}|${d.block ?? ''}`),
      publicKey: k.publicKey,
      name: d.name,
      hostname: d.name,
      os: 'linux',
      endpoints: ['192.0.2.1:51820'],
    });
    if (r.name !== d.name) throw new Error(`device ${d.name} was enrolled as ${r.name}`);
    devices[i] = { deviceId: r.deviceId, ...k };
  });
  return { devices, enrollPerSec: wanted.length / ((nowMs() - t0) / 1000) };
}

export async function runFanout(n: number, o: FanoutOptions): Promise<FanoutResult> {
  return withPolicyBench(n, o.db, async (bench) => {
    const { account: accountName } = bench.ready;
    const account = generateAccount({ devices: n, rules: o.rules, users: false });
    const baseText = policyText(account);
    const http = new BrokerHttpClient(bench.ready.url, bench.ready.certPem);
    // The policy first: tags and blocks must be declared before setup keys can carry them.
    await bench.admin<PolicyApplyResult>({ op: 'policy.apply', account: accountName, text: baseText });
    console.log(`[${n}] enrolling ${n} devices (${o.rules}-rule policy in force)`);
    const { devices, enrollPerSec } = await enroll(bench, http, account.devices);
    http.close();
    // The devices as the broker has them (its addresses), as the policy sees them.
    const infos = await bench.admin<DeviceInfo[]>({ op: 'devices.list', account: accountName });
    const byId = new Map(infos.map((d) => [d.id, d]));
    const policyDevices: PolicyDevice[] = devices.map((d) => {
      const info = byId.get(d.deviceId)!;
      return { id: info.id, name: info.name, address: info.address, tags: info.tags };
    });
    const index = new Map(devices.map((d, i) => [d.deviceId, i]));
    const base = p(baseText);
    const live = new CompiledPolicy(base, policyDevices);
    console.log(`[${n}] ${live.classCount} classes; connecting ${n} WebSocket clients`);

    const clients = bench.forkClients();
    clients.send({
      cmd: 'connect',
      url: bench.ready.url,
      certPem: bench.ready.certPem,
      brokerPublicKey: bench.ready.brokerPublicKey,
      devices,
    });
    const connected = await next<ClientReply, 'connected'>(clients, 'connected', (m) => {
      if (m.kind === 'progress') console.log(`[${n}]   ${m.connected} connected`);
    });
    if (connected.retries > 0) {
      console.log(
        `[${n}] ${connected.retries} connection attempts retried: ${JSON.stringify(connected.retryReasons)}`,
      );
    }
    if (connected.failed > 0) throw new Error(`${connected.failed} clients failed to connect`);
    // Let the online-state deltas of the ramp drain before measuring.
    await sleep(3000);

    let id = 0;
    /** Arms the clients, runs the change, waits for the expected frames and the settle window. */
    const measure = async (
      kind: ChangeSample['kind'],
      expected: Map<number, 'netmap' | 'delta'>,
      watch: string | undefined,
      change: () => Promise<{ brokerChanged?: number }>,
    ): Promise<ChangeSample> => {
      // Devices the broker dropped during an earlier change reconnect first, and their online
      // deltas drain: they would otherwise be counted against this change.
      clients.send({ cmd: 'settle', count: n, timeoutMs: 900_000 });
      const settled = await next<ClientReply, 'settled'>(clients, 'settled');
      if (settled.waitedMs > 1000) {
        console.log(
          `[${n}] waited ${(settled.waitedMs / 1000).toFixed(1)} s for ${settled.open}/${n} clients to reconnect`,
        );
        await sleep(3000);
      }
      if (settled.open < n) throw new Error(`only ${settled.open} of ${n} clients reconnected`);
      const armId = ++id;
      clients.send({ cmd: 'arm', id: armId, expected: [...expected.keys()], watch, timeoutMs: 900_000 });
      await next<ClientReply, 'armed'>(clients, 'armed');
      const s0: BrokerStats = await bench.stats();
      const arrived = next<ClientReply, 'arrived'>(clients, 'arrived');
      const start = nowMs();
      const { brokerChanged } = await change();
      const callMs = nowMs() - start;
      await arrived;
      await sleep(o.settleMs);
      const s1 = await bench.stats();
      clients.send({ cmd: 'collect', id: armId });
      const { arrivals, dropped } = await next<ClientReply, 'collected'>(clients, 'collected');
      const sample = judge(
        kind,
        expected,
        arrivals,
        start,
        callMs,
        brokerChanged,
        (s1.cpuUs - s0.cpuUs) / 1000,
      );
      return { ...sample, dropped, loopMaxMs: s1.loopMaxMs };
    };

    const samples: ChangeSample[] = [];
    const r = rng(n);

    // Baseline: one device gains a tag, then loses it.
    for (let round = 0; round < o.rounds; round++) {
      const x = policyDevices[Math.floor(r() * n)]!;
      // A tag that moves the device to another class (one no rule names would change nothing).
      const candidates = ALL_TAGS.filter((t) => !x.tags.includes(t));
      let tag = '';
      for (let tries = 0; tries < 100 && tag === ''; tries++) {
        const t = candidates[Math.floor(r() * candidates.length)]!;
        if (live.upsertDevice({ ...x, tags: [...x.tags, t].sort() }).classChanged) tag = t;
        live.upsertDevice(x);
      }
      if (tag === '') throw new Error(`no tag moves ${x.name} to another class`);
      for (const tags of [[...x.tags, tag].sort(), [...x.tags]]) {
        const before = viewersOf(live, policyDevices, x.id);
        live.upsertDevice({ ...x, tags });
        const after = viewersOf(live, policyDevices, x.id);
        const expected = new Map<number, 'netmap' | 'delta'>();
        for (const v of new Set([...before, ...after])) expected.set(index.get(v)!, 'delta');
        expected.set(index.get(x.id)!, 'netmap');
        const s = await measure('tag', expected, x.id, async () => {
          await bench.admin({ op: 'devices.tag', account: accountName, device: x.id, tags });
          return {};
        });
        samples.push(s);
        printSample(n, s, `${x.name} ${tags.includes(tag) ? '+' : '-'}${tag}`);
      }
    }

    // The rule change: a port between two role tags, added then taken out again.
    const pickStart = nowMs();
    const pair = pickRuleTags(live, policyDevices);
    console.log(
      `[${n}] rule between ${pair.a} and ${pair.b} (${pair.holding} devices hold either), picked in ` +
        `${((nowMs() - pickStart) / 1000).toFixed(1)} s`,
    );
    const rule: GenRule = { src: [pair.a], dst: [pair.b], ports: [`tcp:${CHANGE_PORT}`] };
    const ruleText = JSON.stringify(rule);
    const withRule = policyText(account, [rule]);
    const planStart = nowMs();
    const plan = planPolicy(base, p(withRule), policyDevices);
    console.log(
      `[${n}] rule ${ruleText}: ${pair.holding} devices hold either tag, ${plan.length} views change ` +
        `(planPolicy here: ${(nowMs() - planStart).toFixed(0)} ms)`,
    );
    // Each affected device gets a delta to its new view (peers gained, lost, or with other ports).
    const expected = new Map<number, 'netmap' | 'delta'>(plan.map((e) => [index.get(e.deviceId)!, 'delta']));
    for (let round = 0; round < o.rounds; round++) {
      for (const text of [withRule, baseText]) {
        const s = await measure('rule', expected, undefined, async () => {
          const res = await bench.admin<PolicyApplyResult>({
            op: 'policy.apply',
            account: accountName,
            text,
          });
          return { brokerChanged: res.devicesChanged };
        });
        samples.push(s);
        printSample(n, s, text === withRule ? 'rule added' : 'rule removed');
      }
    }
    return {
      n,
      classes: live.classCount,
      enrollPerSec,
      connectSec: connected.elapsedMs / 1000,
      connectRetries: connected.retries,
      snapshotMB: connected.snapshotBytes / 1e6,
      ruleText,
      designed: pair.holding,
      samples,
    };
  });
}

/** Devices that see `id` (either may open something on the other). */
function viewersOf(compiled: CompiledPolicy, devices: PolicyDevice[], id: string): string[] {
  return devices.filter((d) => d.id !== id && compiled.access(d.id, id) !== null).map((d) => d.id);
}
