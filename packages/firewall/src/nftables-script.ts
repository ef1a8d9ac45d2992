import { createHash } from 'node:crypto';
import type { NormalizedPolicy, Span } from './policy';

// The nftables ruleset as text. Everything Trellis adds lives in one table, `inet trellis`; the
// per-peer access lives in three sets, so a change for any number of peers is a handful of set
// element updates and the rules themselves stay the same few lines.

export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'trellis';
const T = `${NFT_FAMILY} ${NFT_TABLE}`;

/** Bumped whenever the rule text below changes, so a kernel holding older rules gets a full reload. */
export const NFT_LAYOUT = 1;

/** The desired kernel state: the rule skeleton's inputs plus the element text of each set. */
export interface NftState {
  readonly interfaceName: string;
  readonly selfAddress: string;
  readonly allowAll: readonly string[];
  readonly allowIcmp: readonly string[];
  readonly allowPorts: readonly string[];
}

export type NftSetName = 'allow_all' | 'allow_icmp' | 'allow_ports';
export const NFT_SETS: ReadonlyArray<readonly [NftSetName, 'allowAll' | 'allowIcmp' | 'allowPorts']> = [
  ['allow_all', 'allowAll'],
  ['allow_icmp', 'allowIcmp'],
  ['allow_ports', 'allowPorts'],
];

const span = ([a, b]: Span) => (a === b ? `${a}` : `${a}-${b}`);

export function nftState(p: NormalizedPolicy): NftState {
  const allowPorts: string[] = [];
  for (const peer of p.peers) {
    for (const proto of ['tcp', 'udp'] as const) {
      for (const s of peer[proto]) allowPorts.push(`${peer.address} . ${proto} . ${span(s)}`);
    }
  }
  return {
    interfaceName: p.interfaceName,
    selfAddress: p.selfAddress,
    allowAll: p.peers.filter((x) => x.all).map((x) => x.address),
    allowIcmp: p.peers.filter((x) => x.icmp).map((x) => x.address),
    allowPorts,
  };
}

/** What the `state` set's comment records: a digest of everything the ruleset was built from. */
export function nftStateHash(s: NftState): string {
  const canonical = JSON.stringify([
    NFT_LAYOUT,
    s.interfaceName,
    s.selfAddress,
    s.allowAll,
    s.allowIcmp,
    s.allowPorts,
  ]);
  return `trellis-v${NFT_LAYOUT}:${createHash('sha256').update(canonical).digest('hex')}`;
}

/** Rules of the input chain after its base-chain line; counted by the restart check. */
function inputRules(s: NftState): string[] {
  const self = s.selfAddress;
  return [
    // Only the mesh interface is ours to judge; everything else is left to the other tables.
    `iifname != "${s.interfaceName}" accept`,
    'meta nfproto ipv6 counter name "dropped" drop',
    // Replies to flows this device started (and ICMP errors about them).
    'ct direction reply ct state established,related accept',
    'ct state related icmp type { destination-unreachable, time-exceeded, parameter-problem } accept',
    // What peers send in the original direction is judged on every packet, not just the first.
    `ip daddr ${self} ip saddr @allow_all counter name "accepted" accept`,
    `ip daddr ${self} ip saddr . meta l4proto . th dport @allow_ports counter name "accepted" accept`,
    `ip daddr ${self} icmp type echo-request ip saddr @allow_icmp counter name "accepted" accept`,
    // A forbidden packet inside a TCP flow (not an opening SYN): reset, so the peer sees the cut.
    'tcp flags != syn / syn,ack counter name "rejected" reject with tcp reset',
    'counter name "dropped" drop',
  ];
}

function outputRules(s: NftState): string[] {
  return [
    `oifname != "${s.interfaceName}" accept`,
    // A mid-stream TCP packet this device sends that conntrack does not know (its entry was cut)
    // would otherwise re-create the flow as if this device had started it, and the peer's packets
    // would pass as replies. Unless the peer may open that port anyway, reset the local socket.
    `ip saddr ${s.selfAddress} ct state new tcp flags ! syn,rst ip daddr != @allow_all ` +
      'ip daddr . meta l4proto . th sport != @allow_ports counter name "rejected" reject with tcp reset',
  ];
}

export const NFT_INPUT_RULES = 9;
export const NFT_OUTPUT_RULES = 2;

function setBlock(name: string, type: string, elements: readonly string[], interval = false): string[] {
  const lines = [`\tset ${name} {`, `\t\ttype ${type}`];
  if (interval) lines.push('\t\tflags interval');
  if (elements.length > 0) lines.push(`\t\telements = {\n\t\t\t${elements.join(',\n\t\t\t')}\n\t\t}`);
  lines.push('\t}');
  return lines;
}

function stateElement(s: NftState, hash: string): string {
  return `${s.selfAddress} comment "${hash}"`;
}

/**
 * One `nft -f -` transaction that replaces the whole table: the `add` makes the `delete` safe when
 * the table is absent, and the kernel swaps old for new atomically (no moment without rules).
 */
export function nftFullScript(s: NftState, hash = nftStateHash(s)): string {
  const chain = (name: string, hook: string, rules: string[]) => [
    `\tchain ${name} {`,
    `\t\ttype filter hook ${hook} priority filter; policy accept;`,
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
  ];
  return [
    `add table ${T}`,
    `delete table ${T}`,
    `table ${T} {`,
    '\tcomment "Trellis inbound access policy, managed by the Trellis agent"',
    ...['accepted', 'dropped', 'rejected'].map((c) => `\tcounter ${c} {\n\t}`),
    ...setBlock('state', 'ipv4_addr', [stateElement(s, hash)]),
    ...setBlock('allow_all', 'ipv4_addr', s.allowAll),
    ...setBlock('allow_icmp', 'ipv4_addr', s.allowIcmp),
    ...setBlock('allow_ports', 'ipv4_addr . inet_proto . inet_service', s.allowPorts, true),
    ...chain('input', 'input', inputRules(s)),
    ...chain('output', 'output', outputRules(s)),
    '}',
    '',
  ].join('\n');
}

/** Whether `next` can be reached from `prev` by set element changes alone. */
export function sameSkeleton(prev: NftState, next: NftState): boolean {
  return prev.interfaceName === next.interfaceName && prev.selfAddress === next.selfAddress;
}

function minus(a: readonly string[], b: readonly string[]): string[] {
  const drop = new Set(b);
  return a.filter((x) => !drop.has(x));
}

/**
 * One `nft -f -` transaction of element deletions then additions (deleting first lets a port span
 * grow or shrink without the interval set seeing an overlap). Null when the skeleton differs.
 */
export function nftIncrementalScript(
  prev: NftState,
  next: NftState,
  hash = nftStateHash(next),
): string | null {
  if (!sameSkeleton(prev, next)) return null;
  const deletes: string[] = [`delete element ${T} state { ${next.selfAddress} }`];
  const adds: string[] = [`add element ${T} state { ${stateElement(next, hash)} }`];
  for (const [set, key] of NFT_SETS) {
    const gone = minus(prev[key], next[key]);
    const added = minus(next[key], prev[key]);
    if (gone.length > 0) deletes.push(`delete element ${T} ${set} { ${gone.join(', ')} }`);
    if (added.length > 0) adds.push(`add element ${T} ${set} { ${added.join(', ')} }`);
  }
  return [...deletes, ...adds, ''].join('\n');
}

/** Removes the table and only the table; the `add` makes it succeed when there is none. */
export function nftRemoveScript(): string {
  return `add table ${T}\ndelete table ${T}\n`;
}
