/**
 * Part 1: the policy engine alone, in this process. Parse, compile (CompiledPolicy construction:
 * every device placed in its class), then every device's netmap `access` (peersByAccess for all
 * devices: the class relations are computed lazily there). The same steps with the default
 * allow-all policy over the same devices are the baseline.
 */
import { CompiledPolicy, DEFAULT_POLICY_TEXT, type PolicyDevice, parsePolicy } from '@trellis/policy';
import { generateAccount, policyDevices, policyText } from './generate';

export interface CompileResult {
  label: string;
  devices: number;
  rules: number;
  textKB: number;
  parseMs: number;
  compileMs: number;
  accessMs: number;
  classes: number;
  /** Peers over every device's access (each pair counted from both sides). */
  visiblePairs: number;
  /** Access groups over every device's netmap. */
  accessGroups: number;
  heapMB: number;
}

function measure(label: string, text: string, devices: PolicyDevice[], rules: number): CompileResult {
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const parsed = parsePolicy(text);
  const t1 = performance.now();
  if (!parsed.ok) {
    const first = parsed.errors.slice(0, 3).map((e) => `line ${e.line}:${e.column} ${e.message}`);
    throw new Error(`${label}: the generated policy does not parse: ${first.join('; ')}`);
  }
  const compiled = new CompiledPolicy(parsed.policy, devices);
  const classes = compiled.classCount;
  const t2 = performance.now();
  let visiblePairs = 0;
  let accessGroups = 0;
  for (const d of devices) {
    const access = compiled.peersByAccess(d.id);
    accessGroups += access.length;
    for (const g of access) visiblePairs += g.peers.length;
  }
  const t3 = performance.now();
  const heapMB = (process.memoryUsage().heapUsed - heap0) / 1e6;
  return {
    label,
    devices: devices.length,
    rules,
    textKB: Buffer.byteLength(text) / 1024,
    parseMs: t1 - t0,
    compileMs: t2 - t1,
    accessMs: t3 - t2,
    classes,
    visiblePairs,
    accessGroups,
    heapMB,
  };
}

/** The generated policy over `n` devices, then the allow-all baseline over the same devices. */
export function runCompile(n: number, rules: number): CompileResult[] {
  const account = generateAccount({ devices: n, rules, users: true });
  const devices = policyDevices(account);
  const text = policyText(account);
  // Warm-up on a small slice, so the first measure does not pay for JIT and module loading alone.
  measure('warm-up', text, devices.slice(0, 200), rules);
  measure('warm-up', DEFAULT_POLICY_TEXT, devices.slice(0, 200), 1);
  return [
    measure('allow-all (baseline)', DEFAULT_POLICY_TEXT, devices, 1),
    measure(`${rules} rules`, text, devices, rules),
  ];
}
