import { natForwardChain, natTable } from './nat-rules';
import { inputChain, type RouterContext, type RouterKind, WAN_IF } from './router-kind';

/** Endpoint-dependent mapping: a new random port per destination; port-restricted filtering. */
export class SymmetricNat implements RouterKind {
  readonly name = 'symmetric';
  readonly lan = 'private' as const;

  ruleset(_ctx: RouterContext): string {
    return `
table inet lab {${inputChain()}${natForwardChain()}
}
${natTable({ post: [`oifname "${WAN_IF}" masquerade random`] })}`;
  }
}
