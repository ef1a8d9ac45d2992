import { EXIT_ROUTE, ipv4CidrWithin, ipv4InCidr, onInternet } from '@trellis/proto';
import { blocksAround, innermostBlockIndex } from './blocks';
import { EVERYTHING, isEverything, NOTHING, type PortSet, union } from './ports';
import { ANY, type Atom, blockAtom, INTERNET, nameAtom, userAtom } from './selectors';
import type { Policy, PolicyDevice } from './types';

/**
 * What the policy can tell about a device: its innermost block and the atoms it matches. Devices
 * with the same view are interchangeable for every rule, which is what classes rest on.
 */
export interface DeviceView {
  /** Index of the innermost block; null outside every block. */
  readonly block: number | null;
  /** The blocks it lies within (innermost first). */
  readonly within: readonly number[];
  readonly atoms: ReadonlySet<Atom>;
  /** Rules whose src / dst it matches. */
  readonly srcRules: readonly number[];
  readonly dstRules: Uint8Array;
  /** The same two as bitsets (bit i: rule i), for intersecting a pair a word at a time. */
  readonly srcBits: Uint32Array;
  readonly dstBits: Uint32Array;
  /** Blocks an association joins to one of `within`: everything is open towards devices in them. */
  readonly linked: ReadonlySet<number>;
  /** Routed destinations of the rules it carries -> the wire prefixes they open through it. */
  readonly served: ReadonlyMap<string, readonly string[]>;
  /** Rules with such a destination (bit i: rule i): through the device, their src reach it. */
  readonly routeBits: Uint32Array;
}

/** Two prefixes share addresses: one holds the other. */
export const overlaps = (a: string, b: string) => ipv4CidrWithin(a, b) || ipv4CidrWithin(b, a);

/** A rule's routed destination as the wire names it (autogroup:internet is the exit route). */
export const wirePrefix = (dst: string) => (dst === INTERNET ? EXIT_ROUTE : dst);

/**
 * Whether a gateway's route carries a routed destination. The exit route carries
 * autogroup:internet and everything (`*`, 0.0.0.0/0) only: on the wire EXIT_ROUTE means the
 * exit route alone, so a subnet prefix never reaches the internet and the internet no subnet.
 */
export const carries = (route: string, dst: string) => {
  if (dst === EXIT_ROUTE) return true;
  if (dst === INTERNET || route === EXIT_ROUTE) return dst === INTERNET && route === EXIT_ROUTE;
  return overlaps(dst, route);
};

/**
 * The wire prefixes a routed destination opens through a gateway's routes: everything is each
 * route by name (EXIT_ROUTE would mean the exit route alone); a subnet prefix stays itself (the
 * gateway narrows it); autogroup:internet is the exit route.
 */
export function opened(dst: string, routes: readonly string[]): string[] {
  const carried = routes.filter((r) => carries(r, dst));
  if (carried.length === 0) return [];
  return dst === EXIT_ROUTE ? [...new Set(carried)].sort() : [wirePrefix(dst)];
}

const destinations = new WeakMap<Policy, readonly string[]>();

/** Every routed destination the rules name, sorted, each once. */
export function routeDestinations(policy: Policy): readonly string[] {
  let known = destinations.get(policy);
  if (!known) {
    known = [...new Set(policy.rules.flatMap((r) => r.dstRoutes))].sort();
    destinations.set(policy, known);
  }
  return known;
}

/** The rules' routed destinations that the device's routes carry (sorted), with what they open. */
export function servedBy(policy: Policy, d: PolicyDevice): [string, string[]][] {
  const routes = d.routes ?? [];
  if (routes.length === 0) return [];
  return routeDestinations(policy)
    .map((dst): [string, string[]] => [dst, opened(dst, routes)])
    .filter(([, prefixes]) => prefixes.length > 0);
}

/** The atoms the rules name, `*` and blocks aside (those follow from the address alone). */
export function usedAtoms(policy: Policy): Set<Atom> {
  const sets = new Set(policy.rules.flatMap((r) => [...r.src, ...r.dst])); // a group's set once
  const used = new Set<Atom>();
  for (const set of sets) for (const a of set) if (a !== ANY && !a.startsWith('cidr:')) used.add(a);
  return used;
}

/**
 * The signature of a device: block plus the atoms of `used` it matches. Equal signatures mean
 * equal views.
 */
export function signatureOf(policy: Policy, used: ReadonlySet<Atom>, d: PolicyDevice) {
  const block = innermostBlockIndex(policy, d.address);
  const matched = new Set<Atom>();
  for (const t of d.tags) if (t.startsWith('tag:') && used.has(t)) matched.add(t);
  if (d.user !== undefined && used.has(userAtom(d.user))) matched.add(userAtom(d.user));
  if (used.has(nameAtom(d.name))) matched.add(nameAtom(d.name));
  const atoms = [...matched].sort();
  const served = servedBy(policy, d);
  const routes = served.map(([dst, prefixes]) => `${dst}=${prefixes.join(',')}`).join(' ');
  return { key: `${block ?? '-'}|${atoms.join('\n')}|${routes}`, block, atoms, served };
}

export function viewOf(
  policy: Policy,
  block: number | null,
  atoms: readonly Atom[],
  served: readonly (readonly [string, readonly string[]])[] = [],
): DeviceView {
  const within = block === null ? [] : blocksAround(policy, block);
  const all = new Set<Atom>([ANY, ...atoms, ...within.map((i) => blockAtom(policy.blocks[i]!.name))]);
  // The device's atoms are few; a side's sets may be large groups.
  const hits = (side: readonly ReadonlySet<Atom>[]) => {
    for (const set of side) for (const a of all) if (set.has(a)) return true;
    return false;
  };
  const dstRules = new Uint8Array(policy.rules.length);
  const srcRules: number[] = [];
  const words = Math.ceil(policy.rules.length / 32);
  const srcBits = new Uint32Array(words);
  const dstBits = new Uint32Array(words);
  const routeBits = new Uint32Array(words);
  const servedMap = new Map(served);
  policy.rules.forEach((r, i) => {
    if (servedMap.size > 0 && r.dstRoutes.some((p) => servedMap.has(p))) routeBits[i >>> 5]! |= 1 << (i & 31);
    if (hits(r.src)) {
      srcRules.push(i);
      srcBits[i >>> 5]! |= 1 << (i & 31);
    }
    if (hits(r.dst)) {
      dstRules[i] = 1;
      dstBits[i >>> 5]! |= 1 << (i & 31);
    }
  });
  const linked = new Set<number>();
  for (const x of policy.associations) {
    if (within.includes(x.a)) linked.add(x.b);
    if (within.includes(x.b)) linked.add(x.a);
  }
  return {
    block,
    within,
    atoms: all,
    srcRules,
    dstRules,
    srcBits,
    dstBits,
    linked,
    served: servedMap,
    routeBits,
  };
}

/** A device's view with every atom it matches (not only those the rules use). */
export function deviceView(policy: Policy, d: PolicyDevice): DeviceView {
  const atoms = [
    ...d.tags.filter((t) => t.startsWith('tag:')),
    nameAtom(d.name),
    ...(d.user === undefined ? [] : [userAtom(d.user)]),
  ];
  return viewOf(policy, innermostBlockIndex(policy, d.address), atoms, servedBy(policy, d));
}

/** Why `from` may open something on `to`: the same block, an association, or rules. */
export interface Grounds {
  sameBlock: number | null;
  associations: number[];
  rules: number[];
}

export function groundsOf(policy: Policy, from: DeviceView, to: DeviceView): Grounds {
  const sameBlock = from.block !== null && from.block === to.block ? from.block : null;
  const associations = policy.associations
    .filter(
      (x) =>
        (from.within.includes(x.a) && to.within.includes(x.b)) ||
        (from.within.includes(x.b) && to.within.includes(x.a)),
    )
    .map((x) => x.index);
  const rules = from.srcRules.filter((i) => to.dstRules[i] === 1);
  return { sameBlock, associations, rules };
}

/** What `from` may open on `to`. */
export function openSet(policy: Policy, from: DeviceView, to: DeviceView): PortSet {
  if (from.block !== null && from.block === to.block) return EVERYTHING;
  for (const x of policy.associations) {
    if (
      (from.within.includes(x.a) && to.within.includes(x.b)) ||
      (from.within.includes(x.b) && to.within.includes(x.a))
    ) {
      return EVERYTHING;
    }
  }
  let set = NOTHING;
  for (const i of from.srcRules) {
    if (to.dstRules[i] !== 1) continue;
    set = union(set, policy.rules[i]!.ports);
    if (isEverything(set)) break;
  }
  return set;
}

/**
 * Rules that let `from` reach `address` (outside the overlay) through any gateway serving it:
 * autogroup:internet covers internet addresses only, never a private or special one.
 */
export function routedRules(policy: Policy, from: DeviceView, address: string): number[] {
  return from.srcRules.filter((i) =>
    policy.rules[i]!.dstRoutes.some((p) => (p === INTERNET ? onInternet(address) : ipv4InCidr(address, p))),
  );
}
