import type { RouteAccess } from '@trellis/proto';
import type { DeviceView } from './match';
import { NOTHING, type PortSet, toAccessRules, union } from './ports';
import type { Policy } from './types';

/** What a class may open through another class's routes: one distinct list, interned. */
export interface RouteRelation {
  readonly id: number;
  /** Per routed destination of the rules (sorted by prefix), the union of their ports; shared. */
  readonly list: readonly RouteAccess[];
  /** `JSON.stringify(list)`: equal text, equal relation (across policies too). */
  readonly json: string;
}

const NONE_ID = 0;

/**
 * The route relations of one policy. `from` may open a rule's ports on the rule's routed
 * destination through `to` when `from` matches the rule's src and a route `to` serves carries it
 * (match.ts `carries`: a subnet prefix, which the gateway narrows to what it serves; everything,
 * as each of `to`'s routes; autogroup:internet, as the exit route). EXIT_ROUTE here only ever
 * means the exit route. Blocks and associations are about overlay addresses and open nothing here.
 */
export class RouteTable {
  private readonly list: RouteRelation[] = [];
  private readonly byJson = new Map<string, RouteRelation>();

  constructor(private readonly policy: Policy) {
    this.intern([]);
  }

  get none(): RouteRelation {
    return this.list[NONE_ID]!;
  }

  byId(id: number): RouteRelation {
    return this.list[id]!;
  }

  /** The id of what `from` may open through `to`'s routes. */
  between(from: DeviceView, to: DeviceView): number {
    if (to.served.size === 0) return NONE_ID;
    const sets = new Map<string, PortSet>();
    const a = from.srcBits;
    const b = to.routeBits;
    for (let w = 0; w < a.length; w++) {
      for (let x = a[w]! & b[w]!; x !== 0; x &= x - 1) {
        const rule = this.policy.rules[w * 32 + 31 - Math.clz32(x & -x)]!;
        for (const dst of rule.dstRoutes) {
          // autogroup:internet and everything meet on EXIT_ROUTE only: both mean the exit route.
          for (const prefix of to.served.get(dst) ?? []) {
            sets.set(prefix, union(sets.get(prefix) ?? NOTHING, rule.ports));
          }
        }
      }
    }
    const list = [...sets.keys()]
      .sort()
      .map((prefix) => ({ prefix, rules: toAccessRules(sets.get(prefix)!) }))
      .filter((r) => r.rules.length > 0);
    return list.length === 0 ? NONE_ID : this.intern(list).id;
  }

  private intern(list: readonly RouteAccess[]): RouteRelation {
    const json = JSON.stringify(list);
    let relation = this.byJson.get(json);
    if (!relation) {
      relation = { id: this.list.length, list, json };
      this.list.push(relation);
      this.byJson.set(json, relation);
    }
    return relation;
  }
}
