import { formatEndpoint, parseEndpoint } from '@trellis/proto';
import type { RelayHandle } from '../relay/relay-directory';

/** Relay id → round trip (ms) as one agent measured it (`netinfo.relayRttMs`). */
export type RelayRttTable = Readonly<Record<string, number>>;

/**
 * The order to try relays in for a pair: lowest sum of both devices' measured round trips first;
 * relays a side has not measured come after, fewest allocations first. Which relays may serve the
 * account (private before shared) is the directory's decision, made before this.
 */
export function rankRelays(
  relays: readonly RelayHandle[],
  rttA: RelayRttTable | undefined,
  rttB: RelayRttTable | undefined,
): RelayHandle[] {
  const sumOf = (r: RelayHandle): number | null => {
    const a = rttA?.[r.id];
    const b = rttB?.[r.id];
    return a === undefined || b === undefined ? null : a + b;
  };
  const ranked = relays.map((relay) => ({ relay, sum: sumOf(relay), load: relay.allocations() }));
  ranked.sort((x, y) => {
    if (x.sum !== null && y.sum !== null && x.sum !== y.sum) return x.sum - y.sum;
    if (x.sum !== null && y.sum === null) return -1;
    if (x.sum === null && y.sum !== null) return 1;
    if (x.load !== y.load) return x.load - y.load;
    return x.relay.id < y.relay.id ? -1 : x.relay.id > y.relay.id ? 1 : 0;
  });
  return ranked.map((r) => r.relay);
}

/** The UDP endpoint of an allocation, or null when the relay's public address is not an IP. */
export function relayEndpoint(relay: RelayHandle, port: number): string | null {
  const endpoint = formatEndpoint(relay.publicAddress, port);
  return parseEndpoint(endpoint) === null ? null : endpoint;
}
