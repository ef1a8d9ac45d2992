import { ipv4CidrWithin, OVERLAY_PREFIX } from '@trellis/proto';
import type { ForwardAllowance, NormalizedGateway } from './gateway';
import { pfPorts } from './pf-ruleset';

// The gateway as the pf anchor `trellis_gw` (macOS): translation (nat, rdr) and filter rules in
// one anchor. pf translates before it filters, so a pass rule sees a virtual device's LAN address;
// the rdr tags those packets, and a virtual device's pass rules require the tag, so reaching the
// device by its mesh address never grants what a routed destination would, nor the reverse.

export const PF_GW_ANCHOR = 'trellis_gw';
const VD_TAG = 'trellis_vd';

/** What /etc/pf.conf must hold for the anchor to be evaluated; the filter anchor before `trellis`. */
export const PF_GW_MAIN_LINES: readonly string[] = [
  `nat-anchor "${PF_GW_ANCHOR}"`,
  `rdr-anchor "${PF_GW_ANCHOR}"`,
  `anchor "${PF_GW_ANCHOR}"`,
];

function passRules(on: string, a: ForwardAllowance, g: NormalizedGateway): string[] {
  // A virtual device is named by its mesh /32; after rdr the packet carries its LAN address.
  const vd = g.virtualDevices.find((d) => `${d.meshAddress}/32` === a.destination);
  const to = vd ? vd.lanAddress : a.destination;
  const tag = vd ? ` tagged ${VD_TAG}` : '';
  const head = `pass in quick ${on} inet`;
  if (a.all) return [`${head} from ${a.peer} to ${to}${tag} keep state`];
  const rules: string[] = [];
  if (a.tcp.length > 0)
    rules.push(`${head} proto tcp from ${a.peer} to ${to}${pfPorts(a.tcp)}${tag} flags S/SA keep state`);
  if (a.udp.length > 0)
    rules.push(`${head} proto udp from ${a.peer} to ${to}${pfPorts(a.udp)}${tag} keep state`);
  if (a.icmp) rules.push(`${head} proto icmp from ${a.peer} to ${to} icmp-type echoreq${tag} keep state`);
  return rules;
}

/** The anchor's rules; load with `pfctl -a trellis_gw -f -`. */
export function pfGatewayRules(g: NormalizedGateway): string {
  const mesh = g.meshInterface;
  const on = `on ${mesh}`;
  const out: string[] = [
    `# Trellis gateway for ${mesh} (${g.selfAddress}), generated; load with pfctl -a ${PF_GW_ANCHOR} -f -`,
  ];
  const tables: string[] = [];
  const nat: string[] = [];
  const rdr: string[] = [];
  const filter: string[] = [
    // IPv6 is not carried through the gateway: never forwarded to or from the mesh.
    `block drop in quick ${on} inet6 all`,
    `block drop out quick ${on} inet6 all`,
  ];
  const lan = g.lan;
  if (lan) {
    if (lan.masquerade)
      nat.push(`nat on ${lan.interfaceName} inet from ${OVERLAY_PREFIX} to any -> (${lan.interfaceName})`);
    if (g.virtualDevices.length > 0) {
      tables.push(
        `table <trellis_gw_vd_lan> const { ${g.virtualDevices.map((d) => d.lanAddress).join(', ')} }`,
      );
    }
    for (const d of g.virtualDevices) {
      // 1:1 both ways: in by its mesh address, out under it.
      nat.push(`nat ${on} inet from ${d.lanAddress} to ${OVERLAY_PREFIX} -> ${d.meshAddress}`);
      rdr.push(`rdr ${on} inet from any to ${d.meshAddress} tag ${VD_TAG} -> ${d.lanAddress}`);
    }
    for (const a of g.access) filter.push(...passRules(on, a, g));
    // LAN -> mesh: only registered virtual devices.
    if (g.virtualDevices.length > 0) {
      filter.push(
        `pass in quick on ${lan.interfaceName} inet from <trellis_gw_vd_lan> to ${OVERLAY_PREFIX} keep state`,
      );
    }
    filter.push(`block drop in quick on ${lan.interfaceName} inet from any to ${OVERLAY_PREFIX}`);
  }
  if (g.exitNode && g.exitNode.peers.length > 0) {
    const wan = g.exitNode.wanInterface;
    tables.push(`table <trellis_gw_exit> const { ${g.exitNode.peers.join(', ')} }`);
    if (!(lan?.masquerade && lan.interfaceName === wan)) {
      nat.push(`nat on ${wan} inet from <trellis_gw_exit> to ! ${OVERLAY_PREFIX} -> (${wan})`);
    }
    // Not to private ranges or the node's own subnets (on one NIC the WAN is the LAN).
    const no = [OVERLAY_PREFIX, ...g.exitNode.excluded.filter((p) => !ipv4CidrWithin(p, OVERLAY_PREFIX))];
    tables.push(`table <trellis_gw_exit_no> const { ${no.join(', ')} }`);
    filter.push(`pass in quick ${on} inet from <trellis_gw_exit> to ! <trellis_gw_exit_no> keep state`);
  }
  // Anything else from the mesh to beyond it is not forwarded; what is addressed to mesh addresses
  // (this device) is left to the inbound anchor `trellis`.
  filter.push(`block drop in quick ${on} inet from any to ! ${OVERLAY_PREFIX}`);
  return [...out, ...tables, ...nat, ...rdr, ...filter, ''].join('\n');
}
