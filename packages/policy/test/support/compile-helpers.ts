import { CompiledPolicy, type Policy, type PolicyDevice, parsePolicy } from '@trellis/policy';
import type { PeerAccess } from '@trellis/proto';

/** A policy that must parse. */
export function policyOf(text: string | object): Policy {
  const r = parsePolicy(typeof text === 'string' ? text : JSON.stringify(text));
  if (!r.ok) throw new Error(`policy did not parse: ${JSON.stringify(r.errors)}`);
  return r.policy;
}

export function compile(text: string | object, devices: PolicyDevice[]): CompiledPolicy {
  return new CompiledPolicy(policyOf(text), devices);
}

/** peersByAccess in a canonical order, to compare two compilations. */
export function sortedAccess(groups: PeerAccess[]): PeerAccess[] {
  return groups
    .map((g) => ({ ...g, peers: [...g.peers].sort() }))
    .sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
}

function keyOf(g: PeerAccess): string {
  return JSON.stringify([g.in, g.out, g.routesIn ?? [], g.routesOut ?? []]);
}

/** Everything observable about a compiled policy over the given device ids. */
export function snapshot(c: CompiledPolicy, ids: string[]) {
  const sorted = [...ids].sort();
  return {
    access: sorted.map((a) => sorted.map((b) => c.access(a, b))),
    visible: sorted.map((a) => [...c.visiblePeers(a)].sort()),
    byAccess: sorted.map((a) => sortedAccess(c.peersByAccess(a))),
    sameClass: sorted.map((a) => sorted.map((b) => c.classOf(a) === c.classOf(b))),
  };
}
