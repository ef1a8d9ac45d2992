import { CompiledPolicy } from './compile';
import type { PolicyIssue } from './locations';
import { type DeviceView, routedRules } from './match';
import { parsePolicy, sortIssues } from './parse';
import { covers, formatPortSet, NOTHING, type PortSet, union } from './ports';
import type { Policy, PolicyDevice } from './types';

export type CheckResult =
  | { ok: true; policy: Policy; errors: []; warnings: PolicyIssue[] }
  | { ok: false; policy?: Policy; errors: PolicyIssue[]; warnings: PolicyIssue[] };

/**
 * Parses a policy and runs its tests against the account's devices: what check, plan and apply
 * all do first. A failing test is an error. `policy` is present whenever the text parsed, so a
 * caller can still explain a failing test.
 */
export function checkPolicy(text: string, devices: readonly PolicyDevice[]): CheckResult {
  const parsed = parsePolicy(text);
  if (!parsed.ok) return { ok: false, errors: parsed.errors, warnings: [] };
  const { policy } = parsed;
  const warnings = [...parsed.warnings, ...unknownNames(policy, devices)];
  const errors = runTests(policy, new CompiledPolicy(policy, devices));
  if (errors.length > 0)
    return { ok: false, policy, errors: sortIssues(errors), warnings: sortIssues(warnings) };
  return { ok: true, policy, errors: [], warnings: sortIssues(warnings) };
}

/** Device names the policy mentions that no device has: devices come and go, so only a warning. */
function unknownNames(policy: Policy, devices: readonly PolicyDevice[]): PolicyIssue[] {
  const names = new Set(devices.map((d) => d.name));
  return policy.deviceNames
    .filter((r) => !names.has(r.name))
    .map((r) => ({
      message: `no device is named "${r.name}"`,
      line: r.line,
      column: r.column,
      path: r.path,
    }));
}

/** The file's tests against a compiled policy; one error per failed expectation. */
export function runTests(policy: Policy, compiled: CompiledPolicy): PolicyIssue[] {
  if (policy.tests.length === 0) return [];
  const byName = new Map<string, string>();
  for (const d of compiled.allDevices()) if (!byName.has(d.name)) byName.set(d.name, d.id);
  const errors: PolicyIssue[] = [];
  for (const t of policy.tests) {
    const fail = (message: string) =>
      errors.push({ message: `test failed: ${message}`, line: t.line, column: t.column, path: t.path });
    const src = byName.get(t.src);
    const { device, address } = t.target;
    const dst = device === undefined ? undefined : byName.get(device);
    if (src === undefined) fail(`no device is named "${t.src}"`);
    else if (device !== undefined && dst === undefined) fail(`no device is named "${device}"`);
    else {
      // A routed address is judged against the rules' routed destinations, whatever the gateways.
      const open =
        address !== undefined
          ? routedSet(policy, compiled.viewOfDevice(src)!, address)
          : compiled.openSet(src, dst!);
      const allowed = src !== dst && covers(open, t.target.proto, t.target.port);
      const what = `${t.src} -> ${t.text}`;
      if (t.expect === 'accept' && !allowed) fail(`${what} is denied (allowed: ${formatPortSet(open)})`);
      if (t.expect === 'deny' && allowed) fail(`${what} is allowed`);
    }
  }
  return errors;
}

/** What `from` may open on a routed address (outside the overlay). */
function routedSet(policy: Policy, from: DeviceView, address: string): PortSet {
  return routedRules(policy, from, address).reduce((set, i) => union(set, policy.rules[i]!.ports), NOTHING);
}
