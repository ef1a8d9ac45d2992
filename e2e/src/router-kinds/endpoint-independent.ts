import { FULL_CONE_MAP, hairpinPost, hairpinPre, natForwardChain, natTable } from './nat-rules';
import { inputChain, LAN_IF, type RouterContext, type RouterKind, WAN_IF } from './router-kind';

export interface HairpinOption {
  /** LAN hosts can reach each other through the WAN address (Linux default: no). */
  hairpin?: boolean;
}

type Filtering = 'none' | 'address' | 'address-and-port';

/**
 * Endpoint-independent mapping (Linux masquerade keeps the inside port when free), with the
 * filtering of the concrete kind. Inbound for `none`/`address` goes through the learned map.
 */
abstract class EndpointIndependentNat implements RouterKind {
  abstract readonly name: string;
  readonly lan = 'private' as const;
  protected abstract readonly filtering: Filtering;

  constructor(protected readonly opts: HairpinOption = {}) {}

  ruleset(ctx: RouterContext): string {
    const hairpin = this.opts.hairpin ?? false;
    const opensInbound = this.filtering !== 'address-and-port';
    const needsMap = opensInbound || hairpin;
    const pre: string[] = [];
    if (opensInbound) pre.push(`iifname "${WAN_IF}" meta l4proto udp dnat ip to udp dport map @fc`);
    if (hairpin) pre.push(hairpinPre(ctx.wanAddress));
    const post = [`oifname "${WAN_IF}" masquerade`];
    if (hairpin) post.push(hairpinPost(ctx.wanAddress, ctx.lanPrefix));

    const lanOut: string[] = [];
    const inbound: string[] = [];
    let sets = '';
    if (this.filtering === 'none') inbound.push(`iifname "${WAN_IF}" ct status dnat accept`);
    if (this.filtering === 'address') {
      sets = `
  set seen { type ipv4_addr . inet_service . ipv4_addr; flags dynamic,timeout; timeout 120s; }`;
      lanOut.push(
        `iifname "${LAN_IF}" oifname "${WAN_IF}" meta l4proto udp update @seen { ip saddr . udp sport . ip daddr } accept`,
      );
      inbound.push(`iifname "${WAN_IF}" ct status dnat ip daddr . udp dport . ip saddr @seen accept`);
    }
    return `
table inet lab {${sets}${inputChain()}${natForwardChain(inbound, lanOut)}
}
${natTable({ pre, post, extra: needsMap ? FULL_CONE_MAP : '' })}`;
  }
}

/** Linux default, most home routers: inbound only from exactly the ip:port the inside host sent to. */
export class PortRestrictedNat extends EndpointIndependentNat {
  readonly name: string;
  protected readonly filtering = 'address-and-port' as const;
  constructor(opts: HairpinOption = {}) {
    super(opts);
    this.name = opts.hairpin ? 'port-restricted+hairpin' : 'port-restricted';
  }
}

/** Inbound from any ip:port to a mapping once it exists. */
export class FullConeNat extends EndpointIndependentNat {
  readonly name: string;
  protected readonly filtering = 'none' as const;
  constructor(opts: HairpinOption = {}) {
    super(opts);
    this.name = opts.hairpin ? 'full-cone+hairpin' : 'full-cone';
  }
}

/** Inbound from any port of an address the inside host has sent to. */
export class AddressRestrictedNat extends EndpointIndependentNat {
  readonly name: string;
  protected readonly filtering = 'address' as const;
  constructor(opts: HairpinOption = {}) {
    super(opts);
    this.name = opts.hairpin ? 'address-restricted+hairpin' : 'address-restricted';
  }
}
