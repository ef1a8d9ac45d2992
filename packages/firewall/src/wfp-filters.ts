import { createHash } from 'node:crypto';
import { ipv4ToInt } from '@trellis/proto';
import type { NormalizedPolicy, Span } from './policy';

// The Windows Filtering Platform filter set as plain data. Filters sit at the ALE receive/accept
// layers, which authorize a new inbound flow once (TCP connection, UDP or ICMP flow) and let the
// rest of it through: stateful, and replies to flows this device started are authorized at
// ALE_AUTH_CONNECT instead, so they never meet these filters. (A per-packet block at
// INBOUND_TRANSPORT would also block those replies.)

export const WFP_PROVIDER_KEY = 'b8a19e4f-2122-4284-9d73-d4f7fa97eb75';
export const WFP_SUBLAYER_KEY = '3e4e1bb8-662f-4b6a-b59e-f80437860e7b';
/** Above the Windows Firewall's sublayers; with hard (action-right-clearing) filters ours decide. */
export const WFP_SUBLAYER_WEIGHT = 0xffff;
const PERMIT_WEIGHT = 10;
const BLOCK_WEIGHT = 1;

export type WfpLayer = 'FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4' | 'FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6';

export type WfpValue =
  | { type: 'FWP_UINT8'; value: number }
  | { type: 'FWP_UINT16'; value: number }
  /** IPv4 addresses in host order, as the V4 layers take them. */
  | { type: 'FWP_UINT32'; value: number }
  /** Decimal, since a LUID does not fit a JS number. */
  | { type: 'FWP_UINT64'; value: string }
  | {
      type: 'FWP_RANGE_TYPE';
      low: { type: 'FWP_UINT16'; value: number };
      high: { type: 'FWP_UINT16'; value: number };
    };

export type WfpField =
  | 'FWPM_CONDITION_IP_LOCAL_INTERFACE'
  | 'FWPM_CONDITION_IP_LOCAL_ADDRESS'
  | 'FWPM_CONDITION_IP_REMOTE_ADDRESS'
  | 'FWPM_CONDITION_IP_PROTOCOL'
  | 'FWPM_CONDITION_IP_LOCAL_PORT'
  | 'FWPM_CONDITION_ICMP_TYPE';

/** Conditions on different fields must all hold; several on one field would mean any of them. */
export interface WfpCondition {
  field: WfpField;
  match: 'FWP_MATCH_EQUAL' | 'FWP_MATCH_RANGE';
  value: WfpValue;
}

export interface WfpProvider {
  key: string;
  name: string;
  description: string;
}

export interface WfpSubLayer {
  key: string;
  providerKey: string;
  name: string;
  weight: number;
}

export interface WfpFilter {
  /** Derived from everything below, so equal content means equal key. */
  key: string;
  name: string;
  providerKey: string;
  subLayerKey: string;
  layer: WfpLayer;
  weight: number;
  action: 'FWP_ACTION_PERMIT' | 'FWP_ACTION_BLOCK';
  flags: ReadonlyArray<'FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT'>;
  conditions: WfpCondition[];
}

export interface WfpFilterSet {
  provider: WfpProvider;
  subLayer: WfpSubLayer;
  filters: WfpFilter[];
}

/** RFC 4122 version 5 (SHA-1, name-based) UUID. */
export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const bytes = createHash('sha1').update(ns).update(name).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A LUID as a decimal uint64, checked, since it ends up in a kernel filter condition. */
export function normalizeLuid(luid: bigint | string): string {
  const n = typeof luid === 'bigint' ? luid : /^\d{1,20}$/.test(luid) ? BigInt(luid) : -1n;
  if (n < 0n || n > 0xffffffffffffffffn) throw new Error(`interface LUID ${String(luid)} is not a uint64`);
  return n.toString();
}

const eq = (field: WfpField, value: WfpValue): WfpCondition => ({ field, match: 'FWP_MATCH_EQUAL', value });
const u16 = (value: number) => ({ type: 'FWP_UINT16', value }) as const;
const PROTO = { icmp: 1, tcp: 6, udp: 17 } as const;

export function buildWfpFilterSet(policy: NormalizedPolicy, interfaceLuid: string): WfpFilterSet {
  const provider: WfpProvider = {
    key: WFP_PROVIDER_KEY,
    name: 'Trellis',
    description: 'Trellis mesh: inbound access policy on the WireGuard interface',
  };
  const subLayer: WfpSubLayer = {
    key: WFP_SUBLAYER_KEY,
    providerKey: WFP_PROVIDER_KEY,
    name: 'Trellis inbound access',
    weight: WFP_SUBLAYER_WEIGHT,
  };
  const iface = eq('FWPM_CONDITION_IP_LOCAL_INTERFACE', { type: 'FWP_UINT64', value: interfaceLuid });
  const self = eq('FWPM_CONDITION_IP_LOCAL_ADDRESS', {
    type: 'FWP_UINT32',
    value: ipv4ToInt(policy.selfAddress)!,
  });
  const filters: WfpFilter[] = [];
  const add = (name: string, layer: WfpLayer, action: WfpFilter['action'], conditions: WfpCondition[]) => {
    const body = {
      name,
      providerKey: WFP_PROVIDER_KEY,
      subLayerKey: WFP_SUBLAYER_KEY,
      layer,
      weight: action === 'FWP_ACTION_PERMIT' ? PERMIT_WEIGHT : BLOCK_WEIGHT,
      action,
      flags: ['FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT'] as const,
      conditions,
    };
    filters.push({ key: uuidV5(WFP_SUBLAYER_KEY, JSON.stringify(body)), ...body });
  };
  const V4 = 'FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4';
  for (const peer of policy.peers) {
    const from = eq('FWPM_CONDITION_IP_REMOTE_ADDRESS', {
      type: 'FWP_UINT32',
      value: ipv4ToInt(peer.address)!,
    });
    const permit = (what: string, extra: WfpCondition[]) =>
      add(`Trellis permit ${peer.address} ${what}`, V4, 'FWP_ACTION_PERMIT', [iface, self, from, ...extra]);
    if (peer.all) permit('all', []);
    if (peer.icmp) {
      permit('icmp echo', [
        eq('FWPM_CONDITION_IP_PROTOCOL', { type: 'FWP_UINT8', value: PROTO.icmp }),
        eq('FWPM_CONDITION_ICMP_TYPE', u16(8)),
      ]);
    }
    for (const proto of ['tcp', 'udp'] as const) {
      for (const [low, high] of peer[proto] as Span[]) {
        const conditions = [eq('FWPM_CONDITION_IP_PROTOCOL', { type: 'FWP_UINT8', value: PROTO[proto] })];
        if (low !== 0 || high !== 65535) {
          const value: WfpValue = { type: 'FWP_RANGE_TYPE', low: u16(low), high: u16(high) };
          conditions.push({ field: 'FWPM_CONDITION_IP_LOCAL_PORT', match: 'FWP_MATCH_RANGE', value });
        }
        permit(`${proto} ${low}-${high}`, conditions);
      }
    }
  }
  // Lower weight than every permit: whatever no permit matched on this interface is blocked, IPv6 too.
  add('Trellis block inbound IPv4', V4, 'FWP_ACTION_BLOCK', [iface]);
  add('Trellis block inbound IPv6', 'FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6', 'FWP_ACTION_BLOCK', [iface]);
  return { provider, subLayer, filters };
}
