import { type CarrierNat, inputChain, type RouterContext, type RouterKind } from './router-kind';

/**
 * Carrier router: endpoint-independent SNAT of the whole carrier segment to its WAN address.
 * `masquerade persistent` rather than NATLAB's `snat to W persistent`: same mapping for one
 * address, but renumbering the WAN (roaming tests) drops the old mappings, as it does for real.
 */
class CarrierRouter implements CarrierNat {
  ruleset(_carrierWan: string): string {
    return `
table inet lab {${inputChain('cust0')}
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "cust0" accept
  }
}
table ip labnat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "wan0" masquerade persistent
  }
}
`;
  }
}

/** Double NAT: a home router of kind `home` whose WAN sits inside a carrier's 100.64.0.0/10. */
export class CgnatChain implements RouterKind {
  readonly name: string;
  readonly lan: 'public' | 'private';
  readonly carrier: CarrierNat = new CarrierRouter();

  constructor(private readonly home: RouterKind) {
    if (home.carrier) throw new Error('a CGNAT chain cannot nest another carrier');
    if (home.lan === 'public') throw new Error('a routed public LAN cannot sit behind a carrier NAT');
    this.name = `cgnat/${home.name}`;
    this.lan = home.lan;
  }

  ruleset(ctx: RouterContext): string {
    return this.home.ruleset(ctx);
  }
}
