import { natForwardChain, natTable } from './nat-rules';
import { inputChain, type RouterContext, type RouterKind, WAN_IF } from './router-kind';

export interface UdpForward {
  /** Public UDP port on the router's WAN address. */
  port: number;
  /** Name of the LAN device it goes to. */
  device: string;
  /** Port on the device; default the same as `port`. */
  devicePort?: number;
}

/** Port-restricted NAT plus static DNAT of given UDP ports to given LAN hosts. */
export class PortForwardRouter implements RouterKind {
  readonly name = 'port-forward';
  readonly lan = 'private' as const;

  constructor(readonly forwards: readonly UdpForward[]) {}

  ruleset(ctx: RouterContext): string {
    const pre: string[] = [];
    for (const f of this.forwards) {
      const addr = ctx.devices.get(f.device);
      // The device may join later; its forward appears when the ruleset is re-applied.
      if (addr === undefined) continue;
      pre.push(`iifname "${WAN_IF}" udp dport ${f.port} dnat ip to ${addr}:${f.devicePort ?? f.port}`);
    }
    return `
table inet lab {${inputChain()}${natForwardChain([`iifname "${WAN_IF}" ct status dnat accept`])}
}
${natTable({ pre, post: [`oifname "${WAN_IF}" masquerade`] })}`;
  }
}
