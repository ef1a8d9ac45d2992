import type { Observation } from './reflector-core';

/**
 * RFC 4787 mapping behaviour (section 4.1), from one device socket seen by two reflectors at
 * different IPs. A NAT that maps per destination (symmetric, "address and port-dependent") gives
 * the socket a new external port per destination, so the ports differ; one that maps
 * endpoint-independently (punchable from anywhere) keeps one external port for all of them.
 *
 * The IPs alone prove nothing: RFC 4787 treats the external IP chosen for a mapping as the NAT's
 * address pooling (4.1, REQ-2), and a host with no NAT that reaches one reflector over loopback and
 * the other over its LAN address (the quickstart), or a multi-homed host with one route per
 * reflector, shows one port at two IPs because its own source address differs per destination.
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
  if (a.port === b.port) return 'endpoint-independent';
  // A loopback sighting crossed no NAT: its port is the socket's own. Another reflector seeing a
  // different one shows a NAT that translates the port, not whether it does so per destination
  // (CGNATs that map endpoint-independently rarely keep the port).
  if (isLoopback(a.address) !== isLoopback(b.address)) return 'unknown';
  return 'endpoint-dependent';
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}
