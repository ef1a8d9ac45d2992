import type { AccessRules } from '@trellis/proto';
import type { DeviceView } from './match';
import { EVERYTHING, NOTHING, type PortSet, toAccessRules, unionAll } from './ports';
import type { Policy } from './types';

/** One distinct port set a class may open on another, shared by every pair that has it. */
export interface Relation {
  readonly id: number;
  readonly set: PortSet;
  /** Canonical wire form; shared, so callers must not change it. */
  readonly rules: AccessRules;
  /** `JSON.stringify(rules)`: equal text, equal relation (across policies too). */
  readonly json: string;
}

const NOTHING_ID = 0;
const EVERYTHING_ID = 1;

/**
 * The relations of one policy, interned. What a class may open on another is the union of the
 * ports of the rules both match. Rules' port sets are few and repeat, so a pair is reduced to the
 * set of distinct port sets its shared rules have (a bitset, found a word of rules at a time), and
 * the union for one such set is computed once and looked up after that.
 */
export class RelationTable {
  private readonly byJson = new Map<string, Relation>();
  private readonly list: Relation[] = [];
  /** Rule index -> index of its port set in `portSets`. */
  private readonly rulePorts: Int32Array;
  private readonly portSets: PortSet[] = [];
  /** Bits over `portSets`, reused by every pair (all zero between calls). */
  private readonly scratch: Uint32Array;
  /** The key of a set of port sets -> relation id. */
  private readonly unions = new Map<string, number>();

  constructor(policy: Policy) {
    this.intern(NOTHING);
    this.intern(EVERYTHING);
    const index = new Map<string, number>();
    this.rulePorts = Int32Array.from(policy.rules, (r) => {
      const json = JSON.stringify(r.ports);
      let i = index.get(json);
      if (i === undefined) {
        i = this.portSets.length;
        this.portSets.push(r.ports);
        index.set(json, i);
      }
      return i;
    });
    this.scratch = new Uint32Array(Math.ceil(this.portSets.length / 32));
  }

  get nothing(): Relation {
    return this.list[NOTHING_ID]!;
  }

  /** How many distinct relations exist so far. */
  get size(): number {
    return this.list.length;
  }

  byId(id: number): Relation {
    return this.list[id]!;
  }

  /** The relation id of what `from` may open on `to` (see `openSet` in match.ts, the reference). */
  between(from: DeviceView, to: DeviceView): number {
    if (this.fullyOpen(from, to)) return EVERYTHING_ID;
    const a = from.srcBits;
    const b = to.dstBits;
    const bits = this.scratch;
    let hits = 0;
    for (let w = 0; w < a.length; w++) {
      let x = a[w]! & b[w]!;
      while (x !== 0) {
        const low = x & -x;
        const p = this.rulePorts[w * 32 + 31 - Math.clz32(low)]!;
        bits[p >>> 5]! |= 1 << (p & 31);
        hits++;
        x ^= low;
      }
    }
    if (hits === 0) return NOTHING_ID;
    let key = '';
    for (let w = 0; w < bits.length; w++) {
      const v = bits[w]!;
      key += String.fromCharCode(v & 0xffff, v >>> 16);
    }
    let id = this.unions.get(key);
    if (id === undefined) {
      const sets: PortSet[] = [];
      for (let w = 0; w < bits.length; w++) {
        for (let x = bits[w]!; x !== 0; x &= x - 1)
          sets.push(this.portSets[w * 32 + 31 - Math.clz32(x & -x)]!);
      }
      id = this.intern(unionAll(sets)).id;
      this.unions.set(key, id);
    }
    bits.fill(0);
    return id;
  }

  /** The same innermost block, or blocks joined by an association: everything is open. */
  private fullyOpen(from: DeviceView, to: DeviceView): boolean {
    if (from.block !== null && from.block === to.block) return true;
    if (from.linked.size === 0) return false;
    for (const b of to.within) if (from.linked.has(b)) return true;
    return false;
  }

  private intern(set: PortSet): Relation {
    const rules = toAccessRules(set);
    const json = JSON.stringify(rules);
    let r = this.byJson.get(json);
    if (!r) {
      r = { id: this.list.length, set, rules, json };
      this.list.push(r);
      this.byJson.set(json, r);
    }
    return r;
  }
}
