import { inputChain, type RouterContext, type RouterKind } from './router-kind';

/** No NAT: the LAN is a public prefix the internet routes to this router; everything is forwarded. */
export class RoutedRouter implements RouterKind {
  readonly name = 'routed';
  readonly lan = 'public' as const;

  ruleset(_ctx: RouterContext): string {
    return `
table inet lab {${inputChain()}
  chain forward {
    type filter hook forward priority filter; policy accept;
  }
}
`;
  }
}
