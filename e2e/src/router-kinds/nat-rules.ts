import { LAN_IF, WAN_IF } from './router-kind';

/**
 * Building blocks shared by the NAT kinds, straight from NATLAB.md. Filter rules live in table
 * `inet lab`, NAT rules in table `ip labnat`.
 */

/** Forward chain of a NAT router: LAN out, replies in, plus `extra` rules before the drop policy. */
export function natForwardChain(extra: string[] = [], lanOut: string[] = []): string {
  return `
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ${[...lanOut, `iifname "${LAN_IF}" accept`, ...extra].join('\n    ')}
  }`;
}

/**
 * The learned endpoint-independent mapping (one rule on one line: split across lines, as NATLAB.md
 * prints it, nft parses two rules and rejects `ct reply proto-dst` for lack of a protocol): WAN port → LAN ip:port, updated by every outgoing
 * UDP packet after masquerade picked the port (priority srcnat + 10).
 */
export const FULL_CONE_MAP = `
  map fc { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 120s; }
  chain learn {
    type filter hook postrouting priority srcnat + 10;
    oifname "${WAN_IF}" meta l4proto udp ct direction original update @fc { ct reply proto-dst : ct original ip saddr . ct original proto-src }
  }`;

/** Hairpin: LAN hosts reach each other through the WAN address via the learned map. */
export function hairpinPre(wan: string): string {
  return `iifname "${LAN_IF}" ip daddr ${wan} meta l4proto udp dnat ip to udp dport map @fc`;
}

export function hairpinPost(wan: string, lanPrefix: string): string {
  return `oifname "${LAN_IF}" ip saddr ${lanPrefix} ct status dnat snat ip to ${wan}`;
}

export function natTable(opts: { pre?: string[]; post: string[]; extra?: string }): string {
  return `
table ip labnat {${opts.extra ?? ''}
  chain pre {
    type nat hook prerouting priority dstnat;
    ${(opts.pre ?? []).join('\n    ')}
  }
  chain post {
    type nat hook postrouting priority srcnat;
    ${opts.post.join('\n    ')}
  }
}
`;
}
