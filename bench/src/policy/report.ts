import { percentile, printTable } from '../stats';
import type { CompileResult } from './compile-bench';
import type { ChangeSample, FanoutResult } from './fanout';
import type { FirewallResult } from './firewall-bench';

const FIREWALL_GOAL_MS = 50;

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const thousands = (x: number) => x.toLocaleString('en-US');

export function printCompile(results: CompileResult[]): void {
  printTable(
    "policy engine: parse, compile (CompiledPolicy: devices into classes), every device's netmap access (peersByAccess for all); times in ms",
    [
      'policy',
      'devices',
      'text KB',
      'parse',
      'compile',
      'classes',
      'all access',
      'access/device',
      'visible pairs',
      'access groups',
      'heap MB',
    ],
    results.map((r) => [
      r.label,
      r.devices,
      r.textKB,
      r.parseMs,
      r.compileMs,
      r.classes,
      r.accessMs,
      r.accessMs / r.devices,
      r.visiblePairs,
      r.accessGroups,
      r.heapMB,
    ]),
  );
  const base = results.find((r) => r.label.startsWith('allow-all'));
  const rules = results.find((r) => r !== base);
  if (!base || !rules) return;
  console.log(
    `\ncompile goal: ${thousands(rules.rules)} rules × ${thousands(rules.devices)} devices: parse ${f0(rules.parseMs)} ms, ` +
      `compile ${f0(rules.compileMs)} ms (${thousands(rules.classes)} classes), every device's access ` +
      `${f1(rules.accessMs / 1000)} s (${f1(rules.accessMs / rules.devices)} ms/device); parse + compile + access ` +
      `${f1((rules.parseMs + rules.compileMs + rules.accessMs) / 1000)} s. Baseline, same run, allow-all: parse ` +
      `${f1(base.parseMs)} ms, compile ${f0(base.compileMs)} ms, access ${f1(base.accessMs / 1000)} s ` +
      `(access ×${f1(rules.accessMs / base.accessMs)} the baseline's)`,
  );
}

interface Row {
  n: number;
  kind: ChangeSample['kind'];
  samples: ChangeSample[];
}

function rowsOf(results: FanoutResult[]): Row[] {
  return results.flatMap((r) =>
    (['tag', 'rule'] as const).map((kind) => ({
      n: r.n,
      kind,
      samples: r.samples.filter((s) => s.kind === kind),
    })),
  );
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function printFanout(results: FanoutResult[], settleMs: number): void {
  const rows = rowsOf(results);
  printTable(
    `fan-out of one change to connected devices (broker on its admin socket; per affected device: ms from the admin call to its frame; strays: unaffected devices that got a frame within ${settleMs} ms; dropped: connections the broker closed meanwhile)`,
    [
      'devices',
      'change',
      'changes',
      'affected/change',
      'p50',
      'p99',
      'max',
      'received',
      'missing',
      'dropped',
      'wrong',
      'strays',
      'call p50',
      'broker CPU/change',
      'loop blocked max',
    ],
    rows.map((row) => {
      const times = row.samples.flatMap((s) => s.times);
      const expected = sum(row.samples.map((s) => s.expected));
      return [
        row.n,
        row.kind === 'tag' ? 'one device tag (baseline)' : 'one rule (policy.apply)',
        row.samples.length,
        expected / Math.max(1, row.samples.length),
        percentile(times, 50),
        percentile(times, 99),
        Math.max(...times),
        `${times.length}/${expected}`,
        sum(row.samples.map((s) => s.missing)),
        sum(row.samples.map((s) => sum(Object.values(s.dropped)))),
        sum(row.samples.map((s) => s.wrong)),
        sum(row.samples.map((s) => s.strays)),
        percentile(
          row.samples.map((s) => s.callMs),
          50,
        ),
        sum(row.samples.map((s) => s.brokerCpuMs)) / Math.max(1, row.samples.length),
        Math.max(...row.samples.map((s) => s.loopMaxMs)),
      ];
    }),
  );
  for (const r of results) {
    const rule = r.samples.filter((s) => s.kind === 'rule');
    const tag = r.samples.filter((s) => s.kind === 'tag');
    const rt = rule.flatMap((s) => s.times);
    const tt = tag.flatMap((s) => s.times);
    const expected = sum(rule.map((s) => s.expected));
    const ok = sum(rule.map((s) => s.missing + s.wrong + s.droppedInstead)) === 0;
    const drops = sum(r.samples.map((s) => sum(Object.values(s.dropped))));
    const loop = Math.max(...rule.map((s) => s.loopMaxMs));
    const silent = sum(r.samples.map((s) => s.strays)) === 0;
    const broker = [...new Set(rule.map((s) => s.brokerChanged))].join('/');
    console.log(
      `\nfan-out goal, ${thousands(r.n)} devices (${thousands(r.classes)} classes): a rule change (${r.ruleText}, ` +
        `${rule[0]?.expected ?? 0} affected of ${r.designed} holding either tag; broker counted ${broker}) reached ` +
        `its affected devices in p50/p99 ${f0(percentile(rt, 50))}/${f0(percentile(rt, 99))} ms over ${rule.length} ` +
        `changes; ${rt.length}/${expected} received${ok ? '' : ' (SOME MISSING, DROPPED OR WRONG)'}; the broker's ` +
        `event loop blocked up to ${f1(loop / 1000)} s per rule change` +
        `${drops > 0 ? `, ${drops} CONNECTIONS CLOSED BY THE BROKER` : ''}; unaffected devices ` +
        `${silent ? 'received nothing' : 'RECEIVED FRAMES'} within ${settleMs} ms. Baseline, same run, one device's tag: ` +
        `p50/p99 ${f0(percentile(tt, 50))}/${f0(percentile(tt, 99))} ms to ` +
        `${f0(sum(tag.map((s) => s.expected)) / Math.max(1, tag.length))} devices per change`,
    );
  }
}

export function printFirewall(results: FirewallResult[]): void {
  const r = results[0]!;
  const row = (how: string, what: string, xs: number[]) => [
    how,
    what,
    xs.length,
    percentile(xs, 50),
    percentile(xs, 99),
    Math.max(...xs),
  ];
  printTable(
    `agent firewall (nftables in a network namespace, ${r.link} interface): ${thousands(r.peers)} peers ` +
      `(${thousands(r.elements)} set elements), one peer's tcp ports changed back and forth; ms`,
    ['commands', 'apply', 'runs', 'p50', 'p99', 'max'],
    results.flatMap((x) => [
      row(x.how, 'incremental apply (NftablesBackend), all', x.incremental),
      row(
        '',
        '  port added',
        x.incremental.filter((_, i) => !x.incrementalNarrowing[i]),
      ),
      row(
        '',
        '  port taken away (flows audited)',
        x.incremental.filter((_, i) => x.incrementalNarrowing[i]),
      ),
      row('', '  of which nft -f, all', x.incrementalNft),
      row(
        '',
        '  of which conntrack, port taken away',
        x.incrementalConntrack.filter((_, i) => x.incrementalNarrowing[i]),
      ),
      row('', 'full nft -f of the same ruleset (baseline)', x.fullNft),
      row('', 'full apply by a fresh backend (restart)', x.freshFull),
      row('', '  of which nft (list + load)', x.freshFullNft),
      row('', 'starting a no-op command (true)', x.spawn),
    ]),
  );
  for (const x of results) {
    if (x.anomalies.length > 0) console.log(`${x.how}: unexpected apply paths: ${x.anomalies.join(', ')}`);
  }
  for (const x of results) {
    const p50 = percentile(x.incremental, 50);
    const p99 = percentile(x.incremental, 99);
    console.log(
      `\nfirewall goal (${x.how}): incremental apply with ${thousands(x.peers)} peers p50/p99 ${f1(p50)}/${f1(p99)} ms ` +
        `vs a full nft -f reload p50/p99 ${f1(percentile(x.fullNft, 50))}/${f1(percentile(x.fullNft, 99))} ms ` +
        `(full/incremental ×${f1(percentile(x.fullNft, 50) / p50)} at p50); goal < ${FIREWALL_GOAL_MS} ms: ` +
        `${p99 < FIREWALL_GOAL_MS ? 'met at p99' : p50 < FIREWALL_GOAL_MS ? 'met at p50, not at p99' : 'NOT met'}`,
    );
  }
}
