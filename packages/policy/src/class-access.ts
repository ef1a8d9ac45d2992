import type { AccessRules, RouteAccess } from '@trellis/proto';
import type { Relation } from './relations';
import type { RouteRelation } from './route-access';
import type { PolicyDevice } from './types';

/** What a device of one class and one of another may open on each other; both ways shared. */
export interface ClassAccess {
  /** What the peer may open on the viewer. */
  readonly in: Relation;
  /** What the viewer may open on the peer. */
  readonly out: Relation;
  /** What the peer may reach through the viewer's routes. */
  readonly routesIn: RouteRelation;
  /** What the viewer may reach through the peer's routes. */
  readonly routesOut: RouteRelation;
}

export interface Access {
  /** What the peer may open on the viewer. */
  in: AccessRules;
  /** What the viewer may open on the peer. */
  out: AccessRules;
  /** What the viewer may reach through the peer's routes (absent: nothing). */
  routesOut?: RouteAccess[];
  /** What the peer may reach through the viewer's routes (absent: nothing). */
  routesIn?: RouteAccess[];
}

const sameList = (a: readonly string[] = [], b: readonly string[] = []) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

export const sameRecord = (a: PolicyDevice, b: PolicyDevice) =>
  a === b ||
  (a.name === b.name &&
    a.address === b.address &&
    a.user === b.user &&
    sameList(a.tags, b.tags) &&
    sameList(a.routes, b.routes));

export const copyRules = (rules: AccessRules): AccessRules =>
  rules.map((r) => (r.ports ? { ...r, ports: r.ports.map(([a, b]) => [a, b]) } : { ...r }));

/** The route lists of a pair, present only when non-empty (copied for callers that may change them). */
export function routeFields(p: ClassAccess, copy = false): Pick<Access, 'routesIn' | 'routesOut'> {
  const list = (r: RouteRelation) =>
    copy ? r.list.map((x) => ({ prefix: x.prefix, rules: copyRules(x.rules) })) : (r.list as RouteAccess[]);
  return {
    ...(p.routesOut.list.length > 0 ? { routesOut: list(p.routesOut) } : {}),
    ...(p.routesIn.list.length > 0 ? { routesIn: list(p.routesIn) } : {}),
  };
}
