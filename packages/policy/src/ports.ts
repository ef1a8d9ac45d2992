import type { AccessProtocol, AccessRule, AccessRules, PortSpan } from '@trellis/proto';

/**
 * What one device may open on another, as a set: `other` stands for every protocol that is not
 * tcp, udp or icmp, so "everything" (`[{}]` on the wire) is all four full. Spans are merged and
 * sorted, which makes structural equality set equality.
 */
export interface PortSet {
  readonly other: boolean;
  readonly tcp: readonly PortSpan[];
  readonly udp: readonly PortSpan[];
  readonly icmp: boolean;
}

const FULL_SPANS: readonly PortSpan[] = [[1, 65535]];
export const NOTHING: PortSet = { other: false, tcp: [], udp: [], icmp: false };
export const EVERYTHING: PortSet = { other: true, tcp: FULL_SPANS, udp: FULL_SPANS, icmp: true };

/** Sorted, overlapping and adjacent spans joined. */
export function mergeSpans(spans: readonly PortSpan[]): PortSpan[] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: PortSpan[] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Spans of `a` not covered by `b` (both merged). */
function subtractSpans(a: readonly PortSpan[], b: readonly PortSpan[]): PortSpan[] {
  const out: PortSpan[] = [];
  for (const [first, last] of a) {
    let from = first;
    for (const [x, y] of b) {
      if (y < from || x > last) continue;
      if (x > from) out.push([from, x - 1]);
      from = y + 1;
      if (from > last) break;
    }
    if (from <= last) out.push([from, last]);
  }
  return out;
}

const spansEqual = (a: readonly PortSpan[], b: readonly PortSpan[]) =>
  a.length === b.length && a.every((s, i) => s[0] === b[i]![0] && s[1] === b[i]![1]);

export function union(a: PortSet, b: PortSet): PortSet {
  if (isEverything(a) || isEmpty(b)) return a;
  if (isEverything(b) || isEmpty(a)) return b;
  return {
    other: a.other || b.other,
    tcp: mergeSpans([...a.tcp, ...b.tcp]),
    udp: mergeSpans([...a.udp, ...b.udp]),
    icmp: a.icmp || b.icmp,
  };
}

export function difference(a: PortSet, b: PortSet): PortSet {
  return {
    other: a.other && !b.other,
    tcp: subtractSpans(a.tcp, b.tcp),
    udp: subtractSpans(a.udp, b.udp),
    icmp: a.icmp && !b.icmp,
  };
}

export const isEmpty = (s: PortSet) => !s.other && !s.icmp && s.tcp.length === 0 && s.udp.length === 0;
export const isEverything = (s: PortSet) =>
  s.other && s.icmp && spansEqual(s.tcp, FULL_SPANS) && spansEqual(s.udp, FULL_SPANS);

/** Whether `s` opens `proto` (on `port`; without a port: on any port of it). */
export function covers(s: PortSet, proto: AccessProtocol, port?: number): boolean {
  if (proto === 'icmp') return s.icmp;
  const spans = s[proto];
  return port === undefined ? spans.length > 0 : spans.some(([a, b]) => a <= port && port <= b);
}

/**
 * One entry of a rule's `ports`: `*`, `tcp`, `udp`, `icmp`, `tcp:22`, `udp:8000-8100`. Returns the
 * set, or why the text is not one.
 */
export function parsePortSpec(spec: string): PortSet | string {
  if (spec === '*') return EVERYTHING;
  const m = /^(tcp|udp|icmp)(?::(.*))?$/.exec(spec);
  if (!m) return `"${clip(spec)}" is not a port spec: expected *, tcp, udp, icmp, tcp:PORT or udp:FIRST-LAST`;
  const proto = m[1] as AccessProtocol;
  if (m[2] === undefined)
    return proto === 'icmp' ? { ...NOTHING, icmp: true } : { ...NOTHING, [proto]: FULL_SPANS };
  if (proto === 'icmp') return `icmp has no ports: write "icmp", not "${clip(spec)}"`;
  const r = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(m[2]);
  if (!r) return `"${clip(spec)}": the port must be a number 1-65535 or a range FIRST-LAST`;
  const first = Number(r[1]);
  const last = r[2] === undefined ? first : Number(r[2]);
  if (first < 1 || last < 1 || first > 65535 || last > 65535) return `"${clip(spec)}": ports are 1-65535`;
  if (last < first) return `"${clip(spec)}": the range ends before it starts`;
  return { ...NOTHING, [proto]: [[first, last]] };
}

/** The canonical wire form: `[{}]` for everything, else tcp, udp, icmp in that order. */
export function toAccessRules(s: PortSet): AccessRules {
  if (isEverything(s)) return [{}];
  const out: AccessRule[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const spans = s[proto];
    if (spans.length === 0) continue;
    out.push(spansEqual(spans, FULL_SPANS) ? { proto } : { proto, ports: spans.map(([a, b]) => [a, b]) });
  }
  if (s.icmp) out.push({ proto: 'icmp' });
  return out;
}

/** The set wire rules stand for (any order, overlaps allowed). */
export function fromAccessRules(rules: AccessRules): PortSet {
  let s = NOTHING;
  for (const r of rules) {
    if (r.proto === undefined) return EVERYTHING;
    if (r.proto === 'icmp') s = union(s, { ...NOTHING, icmp: true });
    else s = union(s, { ...NOTHING, [r.proto]: r.ports ?? FULL_SPANS });
  }
  return s;
}

const formatSpans = (spans: readonly PortSpan[]) =>
  spansEqual(spans, FULL_SPANS)
    ? ''
    : ` ${spans.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',')}`;

/** `all`, `none`, or `tcp 22,80-443; udp 53; icmp` (plus `other protocols` when only those remain). */
export function formatPortSet(s: PortSet): string {
  if (isEverything(s)) return 'all';
  const parts: string[] = [];
  if (s.tcp.length > 0) parts.push(`tcp${formatSpans(s.tcp)}`);
  if (s.udp.length > 0) parts.push(`udp${formatSpans(s.udp)}`);
  if (s.icmp) parts.push('icmp');
  if (s.other) parts.push('other protocols');
  return parts.length === 0 ? 'none' : parts.join('; ');
}

/** Human form of wire rules, e.g. `tcp 22,80-443; udp 53; icmp`, `tcp` (every tcp port) or `all`. */
export function formatAccessRules(rules: AccessRules): string {
  return formatPortSet(fromAccessRules(rules));
}

/** Long user text cut short for messages. */
export function clip(s: string, max = 40): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
