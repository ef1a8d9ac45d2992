import type { Candidate, CandidateKind } from '@trellis/proto';
import { MAX_ENDPOINTS, parseEndpoint } from '@trellis/proto';

/** Preference between kinds (as in ICE): on-link first, then what a gateway forwards, then reflexive. */
const KIND_PRIORITY: Record<CandidateKind, number> = {
  lan: 4000,
  portmapped: 3000,
  reflexive: 2000,
  observed: 1000,
};

const PRIVATE_V4: Array<[number, number]> = [
  [0x0a000000, 8],
  [0xac100000, 12],
  [0xc0a80000, 16],
  [0x64400000, 10],
];

/** RFC 1918 and the shared (CGNAT) range: reachable only on the same network. */
export function isPrivateEndpoint(endpoint: string): boolean {
  const parsed = parseEndpoint(endpoint);
  if (parsed?.family !== 4) return false;
  const n = parsed.host.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return PRIVATE_V4.some(([base, bits]) => Math.floor(n / 2 ** (32 - bits)) === base / 2 ** (32 - bits));
}

/**
 * A device's typed candidates, best first: what it reported (its interface addresses: `lan` when
 * private, else `observed`, as is the address the broker saw its control connection come from) and
 * what the broker learned (`reflexive` from the reflector, `portmapped` from the agent's netinfo).
 * An endpoint listed twice keeps its best kind.
 */
export function deviceCandidates(endpoints: readonly string[], learned: readonly Candidate[]): Candidate[] {
  const all: Candidate[] = [];
  endpoints.forEach((endpoint, i) => {
    const kind: CandidateKind = isPrivateEndpoint(endpoint) ? 'lan' : 'observed';
    all.push({ endpoint, kind, priority: KIND_PRIORITY[kind] + MAX_ENDPOINTS * 2 - i });
  });
  learned.forEach((c, i) => {
    all.push({ endpoint: c.endpoint, kind: c.kind, priority: KIND_PRIORITY[c.kind] + MAX_ENDPOINTS * 2 - i });
  });
  all.sort((a, b) => b.priority - a.priority);
  const seen = new Set<string>();
  return all.filter((c) => !seen.has(c.endpoint) && seen.add(c.endpoint)).slice(0, MAX_ENDPOINTS * 2);
}

/** `learned` with the entries of `kind` replaced by `endpoints`. */
export function replaceLearned(
  learned: readonly Candidate[],
  kind: CandidateKind,
  endpoints: readonly string[],
): Candidate[] {
  const rest = learned.filter((c) => c.kind !== kind);
  const fresh = endpoints.slice(0, MAX_ENDPOINTS).map((endpoint) => ({ endpoint, kind, priority: 0 }));
  return [...fresh, ...rest];
}
