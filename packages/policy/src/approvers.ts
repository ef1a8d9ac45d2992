import { EXIT_ROUTE, ipv4CidrWithin } from '@trellis/proto';
import { deviceView } from './match';
import type { Atom } from './selectors';
import type { Policy, PolicyDevice } from './types';

/**
 * Whether the policy's autoApprovers approve `prefix` for `device` without an admin: a subnet
 * prefix when a key of `routes` holds it and the device matches one of that key's selectors, the
 * exit route when the device matches `exitNode`.
 */
export function autoApproves(policy: Policy, device: PolicyDevice, prefix: string): boolean {
  const { routes, exitNode } = policy.autoApprovers;
  const sides =
    prefix === EXIT_ROUTE
      ? [exitNode]
      : routes.filter((r) => ipv4CidrWithin(prefix, r.prefix)).map((r) => r.sets);
  if (sides.every((s) => s.length === 0)) return false;
  const atoms = deviceView(policy, device).atoms;
  const hits = (sets: readonly ReadonlySet<Atom>[]) => sets.some((set) => [...atoms].some((a) => set.has(a)));
  return sides.some(hits);
}
