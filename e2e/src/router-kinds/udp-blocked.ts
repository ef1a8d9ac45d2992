import { natForwardChain, natTable } from './nat-rules';
import { inputChain, LAN_IF, type RouterContext, type RouterKind, WAN_IF } from './router-kind';

/** A network that drops all outbound UDP (TCP and ICMP pass), behind port-restricted NAT. */
export class UdpBlockedNat implements RouterKind {
  readonly name = 'udp-blocked';
  readonly lan = 'private' as const;

  ruleset(_ctx: RouterContext): string {
    const drop = `iifname "${LAN_IF}" oifname "${WAN_IF}" meta l4proto udp drop`;
    return `
table inet lab {${inputChain()}${natForwardChain([], [drop])}
}
${natTable({ post: [`oifname "${WAN_IF}" masquerade`] })}`;
  }
}
