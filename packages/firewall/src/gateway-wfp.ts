import { OVERLAY_PREFIX, parseIpv4Cidr } from '@trellis/proto';
import type { NormalizedGateway } from './gateway';
import { normalizeLuid, uuidV5, WFP_PROVIDER_KEY, WFP_SUBLAYER_WEIGHT } from './wfp-filters';

// Windows gateway, as data. WFP filters forwarding only at FWPM_LAYER_IPFORWARD_V4/V6: per packet,
// stateless, and with no protocol or port conditions (only addresses and interfaces). So:
// - only allowances of everything can become forward permits; narrower ones (ports, ICMP) cannot be
//   enforced there and are left out (fail closed) and listed in `unenforced`;
// - replies need their own permits, from the routed prefix back to the peer (a LAN host in that
//   prefix could then also open flows to that peer: listed in `limitations`).
// NAT is not WFP's: masquerade is WinNAT (`New-NetNat -InternalIPInterfaceAddressPrefix`), which
// has no 1:1 address mapping, so virtual devices cannot be served on Windows (`unsupported`).

export const WFP_GW_SUBLAYER_KEY = 'a138dbaa-a770-49fa-8a74-9638e1260b5e';

export type WfpGwLayer = 'FWPM_LAYER_IPFORWARD_V4' | 'FWPM_LAYER_IPFORWARD_V6';
export type WfpGwField =
  | 'FWPM_CONDITION_IP_LOCAL_INTERFACE'
  | 'FWPM_CONDITION_IP_FORWARD_INTERFACE'
  | 'FWPM_CONDITION_IP_SOURCE_ADDRESS'
  | 'FWPM_CONDITION_IP_DESTINATION_ADDRESS';
export type WfpGwValue =
  /** A LUID, decimal. */
  | { type: 'FWP_UINT64'; value: string }
  /** Host-order address and mask. */
  | { type: 'FWP_V4_ADDR_MASK'; addr: number; mask: number };

export interface WfpGwFilter {
  key: string;
  name: string;
  providerKey: string;
  subLayerKey: string;
  layer: WfpGwLayer;
  weight: number;
  action: 'FWP_ACTION_PERMIT' | 'FWP_ACTION_BLOCK';
  conditions: Array<{ field: WfpGwField; match: 'FWP_MATCH_EQUAL'; value: WfpGwValue }>;
}

export interface WfpGatewayPlan {
  subLayer: { key: string; providerKey: string; name: string; weight: number };
  filters: WfpGwFilter[];
  /** What does the NAT: WinNAT for masquerade, nothing when no translation is asked for. */
  nat: {
    kind: 'WinNAT';
    cmdlet: 'New-NetNat';
    name: string;
    internalIPInterfaceAddressPrefix: string;
  } | null;
  /** Allowances narrower than everything: not permitted (IPFORWARD has no port or protocol condition). */
  unenforced: Array<{ peer: string; destination: string; reason: string }>;
  /** Virtual devices: WinNAT has no 1:1 mapping. */
  unsupported: Array<{ meshAddress: string; lanAddress: string; reason: string }>;
  limitations: string[];
}

/** LUIDs of the interfaces the policy names (the caller resolves them, e.g. ConvertInterfaceAliasToLuid). */
export interface WfpGatewayLuids {
  mesh: bigint | string;
  lan?: bigint | string;
  wan?: bigint | string;
}

const luidValue = (l: bigint | string): WfpGwValue => ({ type: 'FWP_UINT64', value: normalizeLuid(l) });

function prefix(cidrOrAddress: string): WfpGwValue {
  const c = parseIpv4Cidr(cidrOrAddress.includes('/') ? cidrOrAddress : `${cidrOrAddress}/32`)!;
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
  return { type: 'FWP_V4_ADDR_MASK', addr: c.base, mask };
}

export function buildWfpGatewayPlan(g: NormalizedGateway, luids: WfpGatewayLuids): WfpGatewayPlan {
  const filters: WfpGwFilter[] = [];
  const add = (
    name: string,
    layer: WfpGwLayer,
    action: WfpGwFilter['action'],
    conds: WfpGwFilter['conditions'],
    weight = action === 'FWP_ACTION_PERMIT' ? 10 : 1,
  ) => {
    const body = {
      name,
      providerKey: WFP_PROVIDER_KEY,
      subLayerKey: WFP_GW_SUBLAYER_KEY,
      layer,
      weight,
      action,
      conditions: conds,
    };
    filters.push({ key: uuidV5(WFP_GW_SUBLAYER_KEY, JSON.stringify(body)), ...body });
  };
  const c = (field: WfpGwField, value: WfpGwValue) => ({ field, match: 'FWP_MATCH_EQUAL' as const, value });
  const V4 = 'FWPM_LAYER_IPFORWARD_V4';
  const mesh = luidValue(luids.mesh);
  const fromMesh = c('FWPM_CONDITION_IP_LOCAL_INTERFACE', mesh);
  const toMesh = c('FWPM_CONDITION_IP_FORWARD_INTERFACE', mesh);
  const unenforced: WfpGatewayPlan['unenforced'] = [];
  const unsupported = g.virtualDevices.map((d) => ({ ...d, reason: 'WinNAT has no 1:1 address mapping' }));
  const vdDestinations = new Set(g.virtualDevices.map((d) => `${d.meshAddress}/32`));

  if (g.lan) {
    if (luids.lan === undefined) throw new Error('the LAN interface LUID is needed for a gateway with lan');
    const lan = luidValue(luids.lan);
    for (const a of g.access) {
      if (vdDestinations.has(a.destination)) continue; // reported as unsupported
      if (!a.all) {
        unenforced.push({ ...a, reason: 'IPFORWARD filters have no protocol or port condition' });
        continue;
      }
      const peer = c('FWPM_CONDITION_IP_SOURCE_ADDRESS', prefix(a.peer));
      const dest = c('FWPM_CONDITION_IP_DESTINATION_ADDRESS', prefix(a.destination));
      add(`Trellis gateway permit ${a.peer} to ${a.destination}`, V4, 'FWP_ACTION_PERMIT', [
        fromMesh,
        c('FWPM_CONDITION_IP_FORWARD_INTERFACE', lan),
        peer,
        dest,
      ]);
      add(`Trellis gateway permit replies ${a.destination} to ${a.peer}`, V4, 'FWP_ACTION_PERMIT', [
        c('FWPM_CONDITION_IP_LOCAL_INTERFACE', lan),
        toMesh,
        c('FWPM_CONDITION_IP_SOURCE_ADDRESS', prefix(a.destination)),
        c('FWPM_CONDITION_IP_DESTINATION_ADDRESS', prefix(a.peer)),
      ]);
    }
  }
  if (g.exitNode) {
    if (luids.wan === undefined) throw new Error('the WAN interface LUID is needed for an exit node');
    const wan = luidValue(luids.wan);
    // Weights: subnet-route permits (10) > these blocks (8) > exit permits (5) > the blocks (1): an
    // exit client reaches private ranges and the node's own subnets only by a subnet route.
    for (const p of g.exitNode.excluded) {
      add(
        `Trellis exit node block ${p}`,
        V4,
        'FWP_ACTION_BLOCK',
        [
          fromMesh,
          c('FWPM_CONDITION_IP_FORWARD_INTERFACE', wan),
          c('FWPM_CONDITION_IP_DESTINATION_ADDRESS', prefix(p)),
        ],
        8,
      );
    }
    for (const peer of g.exitNode.peers) {
      add(
        `Trellis exit node permit ${peer}`,
        V4,
        'FWP_ACTION_PERMIT',
        [
          fromMesh,
          c('FWPM_CONDITION_IP_FORWARD_INTERFACE', wan),
          c('FWPM_CONDITION_IP_SOURCE_ADDRESS', prefix(peer)),
        ],
        5,
      );
      add(`Trellis exit node permit replies to ${peer}`, V4, 'FWP_ACTION_PERMIT', [
        c('FWPM_CONDITION_IP_LOCAL_INTERFACE', wan),
        toMesh,
        c('FWPM_CONDITION_IP_DESTINATION_ADDRESS', prefix(peer)),
      ]);
    }
  }
  // Lower weight than every permit: nothing else is forwarded from or into the mesh; IPv6 never.
  add('Trellis gateway block from mesh', V4, 'FWP_ACTION_BLOCK', [fromMesh]);
  add('Trellis gateway block into mesh', V4, 'FWP_ACTION_BLOCK', [toMesh]);
  add('Trellis gateway block IPv6 from mesh', 'FWPM_LAYER_IPFORWARD_V6', 'FWP_ACTION_BLOCK', [fromMesh]);
  add('Trellis gateway block IPv6 into mesh', 'FWPM_LAYER_IPFORWARD_V6', 'FWP_ACTION_BLOCK', [toMesh]);

  const masquerade = Boolean(g.lan?.masquerade) || g.exitNode !== null;
  return {
    subLayer: {
      key: WFP_GW_SUBLAYER_KEY,
      providerKey: WFP_PROVIDER_KEY,
      name: 'Trellis gateway forwarding',
      weight: WFP_SUBLAYER_WEIGHT,
    },
    filters,
    nat: masquerade
      ? {
          kind: 'WinNAT',
          cmdlet: 'New-NetNat',
          name: 'trellis-gw',
          internalIPInterfaceAddressPrefix: OVERLAY_PREFIX,
        }
      : null,
    unenforced,
    unsupported,
    limitations: [
      'IPFORWARD filters are stateless: a host inside a permitted prefix may also open flows to that peer',
      ...(g.lan && !g.lan.masquerade && g.exitNode
        ? ['WinNAT masquerades the whole overlay prefix on every external interface, routes included']
        : []),
    ],
  };
}
