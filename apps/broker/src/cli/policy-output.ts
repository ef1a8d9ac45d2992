import { formatAccessRules } from '@trellis/policy';
import type {
  DeviceInfo,
  PolicyApplyResult,
  PolicyCheckResult,
  PolicyDevicePlan,
  PolicyExplainResult,
  PolicyIssueInfo,
  PolicyPlanResult,
  PolicyVersionInfo,
} from '@trellis/proto';

/** Where located issues say they are when there is no file (a rollback, renderResult). */
export const NO_FILE_LABEL = '<policy>';

/** Peers named per plan line; the rest are counted (`--json` has them all). */
const MAX_PLAN_PEERS = 10;

/**
 * Control characters (a policy's strings may carry them, JSON-escaped) shown as escapes: a message
 * stays on its line and cannot drive the terminal.
 */
export function printable(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0d) out += '\\r';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return out;
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * `FILE:LINE:COLUMN: error: message`, as compilers write them (editors jump there), errors and
 * warnings in the order of the text.
 */
export function issueLines(
  label: string,
  errors: readonly PolicyIssueInfo[],
  warnings: readonly PolicyIssueInfo[] = [],
): string[] {
  const all = [
    ...errors.map((issue) => ({ issue, severity: 'error' })),
    ...warnings.map((issue) => ({ issue, severity: 'warning' })),
  ];
  // Stable: at one spot errors stay before warnings, and each keeps the broker's order.
  all.sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column);
  return all.map(
    ({ issue, severity }) =>
      `${printable(label)}:${issue.line}:${issue.column}: ${severity}: ${printable(issue.message)}`,
  );
}

function issueSummary(r: PolicyCheckResult): string {
  const warnings = r.warnings.length > 0 ? `, ${plural(r.warnings.length, 'warning')}` : '';
  return r.ok
    ? `ok: ${plural(r.tests, 'test')} passed${warnings}`
    : `${plural(r.errors.length, 'error')}${warnings}`;
}

/** The located errors and warnings, then `ok: N tests passed` or `N errors`. */
export function formatCheck(label: string, r: PolicyCheckResult): string {
  return [...issueLines(label, r.errors, r.warnings), issueSummary(r)].join('\n');
}

function peerList(peers: readonly string[]): string {
  if (peers.length <= MAX_PLAN_PEERS) return peers.map(printable).join(', ');
  const shown = peers.slice(0, MAX_PLAN_PEERS).map(printable).join(', ');
  return `${shown} and ${peers.length - MAX_PLAN_PEERS} more`;
}

/** `laptop-1: + in from db-1, db-2: tcp 5432` per change (`-` for a loss). */
export function planLines(devices: readonly PolicyDevicePlan[]): string[] {
  const lines: string[] = [];
  for (const d of devices) {
    const line = (sign: '+' | '-', c: PolicyDevicePlan['gains'][number]) =>
      `${printable(d.device)}: ${sign} ${c.direction === 'in' ? 'in from' : 'out to'} ${peerList(c.peers)}: ${printable(c.text)}`;
    for (const c of d.gains) lines.push(line('+', c));
    for (const c of d.losses) lines.push(line('-', c));
  }
  return lines;
}

/** The check's issues; when the policy is valid, what each device gains and loses. */
export function formatPlan(label: string, r: PolicyPlanResult): string {
  if (!r.ok) return formatCheck(label, r);
  const lines = [...issueLines(label, [], r.warnings), ...planLines(r.devices)];
  const against = `compared with version ${r.fromVersion}`;
  lines.push(
    r.devices.length === 0
      ? `no device changes (${against})`
      : `${plural(r.devices.length, 'device')} would change (${against})`,
  );
  return lines.join('\n');
}

export function formatApply(label: string, r: PolicyApplyResult, rollbackOf?: number): string {
  const what =
    rollbackOf === undefined
      ? `applied version ${r.version}`
      : `rolled back to version ${rollbackOf}, applied as version ${r.version}`;
  const changed = `${plural(r.devicesChanged, 'device')} changed`;
  return [...issueLines(label, [], r.warnings), `${what} (${changed})`].join('\n');
}

/**
 * The located issues of a PolicyRejectedError's message (`  line L, column C: message` lines after
 * the first), or null when it is not one. A line that is not an issue continues the one before.
 */
export function rejectionIssues(message: string): PolicyIssueInfo[] | null {
  const [first, ...rest] = message.split('\n');
  if (!first?.startsWith('the policy is invalid')) return null;
  const issues: PolicyIssueInfo[] = [];
  for (const line of rest) {
    const m = /^\s*line (\d+), column (\d+): (.*)$/.exec(line);
    if (m) issues.push({ line: Number(m[1]), column: Number(m[2]), message: m[3]!, path: [] });
    else if (issues.length > 0) issues[issues.length - 1]!.message += `\n${line}`;
  }
  return issues.length > 0 ? issues : null;
}

/** `NAME` of `NAME:PORT`, `NAME:tcp/PORT`, `NAME:icmp`… */
const targetName = (dst: string) => (dst.includes(':') ? dst.slice(0, dst.lastIndexOf(':')) : dst);

/**
 * `allowed by rule 2 (line 14): {…}` per reason (rules and associations numbered from 1, as
 * they appear in the file), or `denied: no rule allows SRC to reach DST`; then all that each
 * of the two may open on the other.
 */
export function formatExplain(src: string, dst: string, r: PolicyExplainResult): string {
  const lines: string[] = [];
  for (const reason of r.reasons) {
    const text = printable(reason.text);
    const n = reason.index === undefined ? '' : ` ${reason.index + 1}`;
    if (reason.kind === 'cidr') lines.push(`allowed by block (line ${reason.line}): ${text}`);
    else lines.push(`allowed by ${reason.kind}${n} (line ${reason.line}): ${text}`);
  }
  const from = printable(src);
  const to = printable(targetName(dst));
  if (!r.allowed) lines.push(`denied: no rule allows ${from} to reach ${printable(dst)}`);
  lines.push(`${from} may open on ${to}: ${formatAccessRules(r.out)}`);
  lines.push(`${to} may open on ${from}: ${formatAccessRules(r.in)}`);
  return lines.join('\n');
}

export function formatHistory(
  versions: readonly PolicyVersionInfo[],
  table: (rows: string[][]) => string,
): string {
  if (versions.length === 0) return 'no policy applied yet: version 0, the default (allow all), is in force';
  return table([
    ['VERSION', 'APPLIED', 'BY', 'ROLLBACK OF', 'BYTES'],
    ...versions.map((v) => [
      String(v.version),
      v.appliedAt,
      printable(v.appliedBy),
      v.rollbackOf === null ? '-' : String(v.rollbackOf),
      String(v.bytes),
    ]),
  ]);
}

export function formatTags(d: DeviceInfo): string {
  return d.tags.length === 0 ? `device ${d.name}: no tags` : `device ${d.name}: tags ${d.tags.join(', ')}`;
}

/** The text as stored; one final newline is left to the printer (it adds one). */
export const policyTextForOut = (text: string) => (text.endsWith('\n') ? text.slice(0, -1) : text);
