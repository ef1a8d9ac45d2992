import type { Observation } from './reflector-core';

/**
 * RFC 4787 mapping behaviour, from one device socket seen by two reflectors at different IPs:
 * the same public ip:port from both means the NAT maps endpoint-independently (punchable from
 * anywhere); a different one means it maps per destination (symmetric NAT).
 */
export type NatMapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export interface MappingClassifyOptions {
  /** Observations further apart than this (ms) may straddle a roam and prove nothing. Default 60 s. */
  maxSkewMs?: number;
}

export function classifyNatMapping(
  a: Observation | undefined,
  b: Observation | undefined,
  options: MappingClassifyOptions = {},
): NatMapping {
  if (!a || !b || a.publicKey !== b.publicKey) return 'unknown';
  if (Math.abs(a.at - b.at) > (options.maxSkewMs ?? 60_000)) return 'unknown';
  return a.endpoint === b.endpoint ? 'endpoint-independent' : 'endpoint-dependent';
}
