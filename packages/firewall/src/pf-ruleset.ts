import { createHash } from 'node:crypto';
import { formatSpans, type NormalizedPolicy, type PeerAllowance, type Span } from './policy';

// The pf anchor `trellis` as text (macOS). pf keeps state: a rule is evaluated for a flow's first
// packet and the state passes the rest, so a policy change must kill states itself (see pf.ts).

export const PF_ANCHOR = 'trellis';
/** pf labels hold 63 characters; 32 hex digits of the digest fit with the prefix. */
const LABEL_PREFIX = 'trellis:';

export function pfPorts(spans: readonly Span[]): string {
  if (spans.length === 1 && spans[0]![0] === 0 && spans[0]![1] === 65535) return '';
  const items = spans.map(([a, b]) => (a === b ? `${a}` : `${a}:${b}`));
  return items.length === 1 ? ` port ${items[0]}` : ` port { ${items.join(', ')} }`;
}

/** Peers with the same tcp and udp spans share one table, so the rule count follows distinct rule sets. */
function portGroups(
  peers: readonly PeerAllowance[],
): Array<{ tcp: readonly Span[]; udp: readonly Span[]; peers: string[] }> {
  const groups = new Map<string, { tcp: readonly Span[]; udp: readonly Span[]; peers: string[] }>();
  for (const p of peers) {
    if (p.all || (p.tcp.length === 0 && p.udp.length === 0)) continue;
    const key = `${formatSpans(p.tcp)}|${formatSpans(p.udp)}`;
    const g = groups.get(key) ?? { tcp: p.tcp, udp: p.udp, peers: [] };
    g.peers.push(p.address);
    groups.set(key, g);
  }
  return [...groups.values()];
}

function table(name: string, addresses: readonly string[]): string {
  return `table <${name}> const { ${addresses.join(', ')} }`;
}

/** The anchor's rules without the digest label; what the label is computed over. */
function pfBody(p: NormalizedPolicy): string[] {
  const on = `on ${p.interfaceName} inet`;
  const to = `to ${p.selfAddress}`;
  const all = p.peers.filter((x) => x.all).map((x) => x.address);
  const icmp = p.peers.filter((x) => x.icmp).map((x) => x.address);
  const groups = portGroups(p.peers);
  const tables: string[] = [];
  const rules: string[] = [
    // Replies to flows this device starts; not quick, so the main ruleset may still restrict them.
    `pass out ${on} all keep state`,
  ];
  if (all.length > 0) {
    tables.push(table('trellis_all', all));
    rules.push(`pass in quick ${on} from <trellis_all> ${to} keep state`);
  }
  if (icmp.length > 0) {
    tables.push(table('trellis_icmp', icmp));
    rules.push(`pass in quick ${on} proto icmp from <trellis_icmp> ${to} icmp-type echoreq keep state`);
  }
  groups.forEach((g, i) => {
    const name = `trellis_p${i}`;
    tables.push(table(name, g.peers));
    if (g.tcp.length > 0) {
      rules.push(`pass in quick ${on} proto tcp from <${name}> ${to}${pfPorts(g.tcp)} flags S/SA keep state`);
    }
    if (g.udp.length > 0) {
      rules.push(`pass in quick ${on} proto udp from <${name}> ${to}${pfPorts(g.udp)} keep state`);
    }
  });
  return [
    `# Trellis inbound access policy for ${p.interfaceName} (${p.selfAddress}), generated; load with pfctl -a ${PF_ANCHOR} -f -`,
    ...tables,
    ...rules,
  ];
}

export function pfDigestLabel(p: NormalizedPolicy): string {
  const digest = createHash('sha256').update(pfBody(p).join('\n')).digest('hex').slice(0, 32);
  return `${LABEL_PREFIX}${digest}`;
}

/** The whole anchor: tables, passes, and a final quick block (IPv6 included) carrying the digest. */
export function pfAnchorRules(p: NormalizedPolicy): string {
  return [...pfBody(p), `block drop in quick on ${p.interfaceName} all label "${pfDigestLabel(p)}"`, ''].join(
    '\n',
  );
}

/** The label a loaded anchor carries (from `pfctl -a trellis -sr`), if any. */
export function pfLoadedLabel(rules: string): string | undefined {
  return new RegExp(`label "(${LABEL_PREFIX}[0-9a-f]{32})"`).exec(rules)?.[1];
}

/** Whether the main ruleset (`pfctl -sr`) evaluates the anchor. */
export function pfMainHasAnchor(rules: string): boolean {
  return new RegExp(`^anchor "${PF_ANCHOR}"`, 'm').test(rules);
}

/** /etc/pf.conf with the anchor line added: before its `load anchor` lines, which must come last. */
export function pfMainWithAnchor(pfConf: string): string {
  const lines = pfConf.replace(/\n+$/, '').split('\n');
  const at = lines.findIndex((l) => /^\s*load\s+anchor\b/.test(l));
  const line = `anchor "${PF_ANCHOR}"`;
  if (at < 0) lines.push(line);
  else lines.splice(at, 0, line);
  return `${lines.join('\n')}\n`;
}

export interface PfRuleCounters {
  accepted: { packets: number; bytes: number };
  dropped: { packets: number; bytes: number };
}

/** Sums `pfctl -a trellis -vsr`: inbound passes are "accepted", blocks "dropped". */
export function parsePfVerboseRules(text: string): PfRuleCounters {
  const out: PfRuleCounters = { accepted: { packets: 0, bytes: 0 }, dropped: { packets: 0, bytes: 0 } };
  let bucket: 'accepted' | 'dropped' | null = null;
  for (const line of text.split('\n')) {
    if (/^pass in\b/.test(line)) bucket = 'accepted';
    else if (/^block\b/.test(line)) bucket = 'dropped';
    else if (/^\S/.test(line)) bucket = null;
    const m = /Packets:\s*(\d+)\s+Bytes:\s*(\d+)/.exec(line);
    if (m && bucket) {
      out[bucket].packets += Number(m[1]);
      out[bucket].bytes += Number(m[2]);
    }
  }
  return out;
}
