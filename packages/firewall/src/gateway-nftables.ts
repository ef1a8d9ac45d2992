import { createHash } from 'node:crypto';
import type { NormalizedGateway } from './gateway';
import type { Span } from './policy';

// The gateway's forwarding and NAT as nftables text. It lives in its own table, `inet trellis_gw`,
// beside the inbound table `inet trellis`: a gateway role comes and goes without touching the
// inbound rules (and their incremental updates and restart check), and each table is replaced
// atomically on its own. Nothing here touches any other table.

export const NFT_GW_TABLE = 'trellis_gw';
const T = `inet ${NFT_GW_TABLE}`;

/** Bumped whenever the rule text below changes; it is part of the digest in the table comment. */
export const NFT_GW_LAYOUT = 3;

const span = ([a, b]: Span) => (a === b ? `${a}` : `${a}-${b}`);
const q = (name: string) => `"${name}"`;

/** The set elements: `peer . destination` (interval keys, destination a prefix) and LAN sources. */
export interface NftGatewaySets {
  readonly fwdAll: string[];
  readonly fwdIcmp: string[];
  readonly fwdPorts: string[];
  readonly exitPeers: string[];
  readonly exitExcluded: string[];
  readonly vdLan: string[];
}

export function nftGatewaySets(g: NormalizedGateway): NftGatewaySets {
  const fwdPorts: string[] = [];
  for (const a of g.access) {
    for (const proto of ['tcp', 'udp'] as const) {
      for (const s of a[proto]) fwdPorts.push(`${a.peer} . ${a.destination} . ${proto} . ${span(s)}`);
    }
  }
  return {
    fwdAll: g.access.filter((a) => a.all).map((a) => `${a.peer} . ${a.destination}`),
    fwdIcmp: g.access.filter((a) => a.icmp).map((a) => `${a.peer} . ${a.destination}`),
    fwdPorts,
    exitPeers: g.exitNode?.peers ?? [],
    exitExcluded: g.exitNode?.excluded ?? [],
    vdLan: g.virtualDevices.map((d) => d.lanAddress),
  };
}

/** Digest of everything the table is built from; recorded as the table's comment. */
export function nftGatewayHash(g: NormalizedGateway): string {
  const canonical = JSON.stringify([NFT_GW_LAYOUT, g]);
  return `trellis-gw-v${NFT_GW_LAYOUT}:${createHash('sha256').update(canonical).digest('hex')}`;
}

function forwardRules(g: NormalizedGateway): string[] {
  const mesh = q(g.meshInterface);
  const rules = [
    // Only forwarding to or from the mesh is ours to judge; other tables decide the rest.
    `iifname != ${mesh} oifname != ${mesh} accept`,
    // IPv6 is not carried through a gateway: blocked both ways, so an exit node never leaks it.
    'meta nfproto ipv6 counter name "dropped" drop',
    // Replies, and the rest of flows whose first packet passed below.
    'ct state established,related accept',
  ];
  if (g.lan) {
    // `ct original ip daddr` is the address the peer asked for: the virtual device's mesh address
    // before DNAT, the LAN address itself for a routed destination.
    const to = `iifname ${mesh} oifname ${q(g.lan.interfaceName)} ip saddr . ct original ip daddr`;
    rules.push(
      `${to} @fwd_all counter name "accepted" accept`,
      `${to} . meta l4proto . th dport @fwd_ports counter name "accepted" accept`,
      `icmp type echo-request ${to} @fwd_icmp counter name "accepted" accept`,
      // LAN -> mesh: only registered virtual devices (each under its mesh address, below); nothing else enters.
      `iifname ${q(g.lan.interfaceName)} oifname ${mesh} ip saddr @vd_lan counter name "accepted" accept`,
    );
  }
  if (g.exitNode) {
    // Not to private ranges or the node's own subnets (on one NIC the WAN is the LAN): only the
    // subnet-route rules above may let an exit client there.
    rules.push(
      `iifname ${mesh} oifname ${q(g.exitNode.wanInterface)} ip saddr @exit_peers ip daddr != @exit_excluded counter name "accepted" accept`,
    );
  }
  rules.push('counter name "dropped" drop');
  return rules;
}

function preroutingRules(g: NormalizedGateway): string[] {
  // One rule per virtual device: its mesh address becomes its LAN address.
  return g.virtualDevices.map(
    (d) => `iifname ${q(g.meshInterface)} ip daddr ${d.meshAddress} dnat ip to ${d.lanAddress}`,
  );
}

function postroutingRules(g: NormalizedGateway): string[] {
  const mesh = q(g.meshInterface);
  const rules: string[] = [];
  if (g.lan?.masquerade) rules.push(`iifname ${mesh} oifname ${q(g.lan.interfaceName)} masquerade`);
  if (g.exitNode && !(g.lan?.masquerade && g.lan.interfaceName === g.exitNode.wanInterface)) {
    rules.push(`iifname ${mesh} oifname ${q(g.exitNode.wanInterface)} masquerade`);
  }
  if (g.lan && g.virtualDevices.length > 0) {
    // 1:1: each registered LAN host leaves under its own mesh address, so the destination's own
    // firewall judges it by the policy like any device, and cannot mistake it for the gateway.
    rules.push(`iifname ${q(g.lan.interfaceName)} oifname ${mesh} snat ip to ip saddr map @vd_snat`);
  }
  return rules;
}

function setBlock(name: string, type: string, elements: readonly string[], interval: boolean): string[] {
  const lines = [`\tset ${name} {`, `\t\ttype ${type}`];
  if (interval) lines.push('\t\tflags interval');
  if (elements.length > 0) lines.push(`\t\telements = {\n\t\t\t${elements.join(',\n\t\t\t')}\n\t\t}`);
  lines.push('\t}');
  return lines;
}

function mapBlock(name: string, type: string, elements: readonly string[]): string[] {
  const lines = [`\tmap ${name} {`, `\t\ttype ${type}`];
  if (elements.length > 0) lines.push(`\t\telements = {\n\t\t\t${elements.join(',\n\t\t\t')}\n\t\t}`);
  lines.push('\t}');
  return lines;
}

function chain(name: string, type: string, hook: string, priority: string, rules: string[]): string[] {
  return [
    `\tchain ${name} {`,
    `\t\ttype ${type} hook ${hook} priority ${priority}; policy accept;`,
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
  ];
}

/** One `nft -f -` transaction replacing the whole gateway table (the `add` makes the `delete` safe). */
export function nftGatewayScript(g: NormalizedGateway, hash = nftGatewayHash(g)): string {
  const s = nftGatewaySets(g);
  const pair = 'ipv4_addr . ipv4_addr';
  return [
    `add table ${T}`,
    `delete table ${T}`,
    `table ${T} {`,
    `\tcomment "${hash}"`,
    ...['accepted', 'dropped'].map((c) => `\tcounter ${c} {\n\t}`),
    ...setBlock('fwd_all', pair, s.fwdAll, true),
    ...setBlock('fwd_icmp', pair, s.fwdIcmp, true),
    ...setBlock('fwd_ports', `${pair} . inet_proto . inet_service`, s.fwdPorts, true),
    ...setBlock('exit_peers', 'ipv4_addr', s.exitPeers, false),
    ...setBlock('exit_excluded', 'ipv4_addr', s.exitExcluded, true),
    ...setBlock('vd_lan', 'ipv4_addr', s.vdLan, false),
    ...mapBlock(
      'vd_snat',
      'ipv4_addr : ipv4_addr',
      g.virtualDevices.map((d) => `${d.lanAddress} : ${d.meshAddress}`),
    ),
    ...chain('forward', 'filter', 'forward', 'filter', forwardRules(g)),
    ...chain('prerouting', 'nat', 'prerouting', 'dstnat', preroutingRules(g)),
    ...chain('postrouting', 'nat', 'postrouting', 'srcnat', postroutingRules(g)),
    '}',
    '',
  ].join('\n');
}

/** Removes the gateway table and only it; succeeds when there is none. */
export function nftGatewayRemoveScript(): string {
  return `add table ${T}\ndelete table ${T}\n`;
}
