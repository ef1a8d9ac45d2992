import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Namespace } from '../namespace';
import {
  inputChain,
  LAN_IF,
  type RouterContext,
  type RouterKind,
  type RouterServiceHost,
  WAN_IF,
} from './router-kind';

/**
 * A home router with port mapping: port-restricted masquerade (Linux default, NATLAB.md) plus
 * Debian's miniupnpd serving PCP, NAT-PMP and UPnP-IGD to the LAN on its nftables backend.
 * miniupnpd fills chains it does not create, so the ruleset has them, all in `inet lab` (the
 * table and family it is configured for). Its WAN is outside TEST-NET: miniupnpd refuses to map on a
 * reserved address, and 2.3.1 has no option to allow one (`ext_ip=` is checked the same way).
 */
export class UpnpNat implements RouterKind {
  readonly name = 'upnp';
  readonly lan = 'private' as const;
  readonly wan = 'unreserved' as const;

  ruleset(_ctx: RouterContext): string {
    return `
table inet lab {${inputChain()}
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "${LAN_IF}" oifname "${WAN_IF}" accept
    jump miniupnpd
  }
  chain miniupnpd {}
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
    oifname "${WAN_IF}" masquerade
  }
  chain prerouting_miniupnpd {}
  chain postrouting_miniupnpd {}
}
`;
  }

  async startServices(router: Namespace, host: RouterServiceHost, ctx: RouterContext): Promise<void> {
    const base = join(host.runDir, `${router.name}-miniupnpd`);
    writeFileSync(`${base}.conf`, miniupnpdConfig(ctx.lanPrefix, `${base}.leases`));
    const p = router.spawn('miniupnpd', ['-f', `${base}.conf`, '-d', '-P', `${base}.pid`], {
      logName: `${router.name}-miniupnpd`,
    });
    await p.waitForLine(/Listening for NAT-PMP\/PCP traffic/, 15_000);
  }
}

function miniupnpdConfig(lanPrefix: string, leaseFile: string): string {
  return `
ext_ifname=${WAN_IF}
listening_ip=${LAN_IF}
http_port=5000
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
min_lifetime=2
max_lifetime=86400
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
upnp_table_name=lab
upnp_nat_table_name=lab
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
lease_file=${leaseFile}
allow 1024-65535 ${lanPrefix} 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`;
}
