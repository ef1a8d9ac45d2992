import type { AccessRules } from '@trellis/proto';
import type { DeviceView } from './match';
import { PortSetFamily } from './port-union';
import { EVERYTHING, NOTHING, type PortSet, toAccessRules } from './ports';
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
  /** Hash of a port set -> the relations with that hash, each with its set as numbers. */
  private readonly byHash = new Map<number, { flat: number[]; relation: Relation }[]>();
  /** Every relation by its text (relations adopted from another table are only here). */
  private readonly byJson = new Map<string, Relation>();
  private readonly list: Relation[] = [];
  /** Rule index -> index of its port set in `portSets`. */
  private readonly rulePorts: Int32Array;
  private readonly portSets: PortSet[] = [];
  /** Bits over `portSets`, reused by every pair (all zero between calls). */
  private readonly scratch: Uint32Array;
  private readonly family: PortSetFamily;
  /** Port set index -> its relation id (a pair sharing rules of one port set only). */
  private readonly single: Int32Array;
  /** Hash of a set of port sets (the scratch bits) -> its unions computed so far. */
  private readonly unions = new Map<number, KnownUnion[]>();

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
    this.family = new PortSetFamily(this.portSets);
    this.single = Int32Array.from(this.portSets, (set) => this.intern(set).id);
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
    let distinct = 0;
    let last = -1;
    for (let w = 0; w < a.length; w++) {
      let x = a[w]! & b[w]!;
      while (x !== 0) {
        const low = x & -x;
        const p = this.rulePorts[w * 32 + 31 - Math.clz32(low)]!;
        const bit = 1 << (p & 31);
        if ((bits[p >>> 5]! & bit) === 0) {
          bits[p >>> 5]! |= bit;
          distinct++;
          last = p;
        }
        x ^= low;
      }
    }
    if (distinct === 0) return NOTHING_ID;
    if (distinct === 1) {
      bits[last >>> 5] = 0;
      return this.single[last]!;
    }
    const hash = hashWords(bits);
    let known = this.unions.get(hash);
    let id = known?.find((u) => sameWords(u.bits, bits))?.id;
    if (id === undefined) {
      const members: number[] = [];
      for (let w = 0; w < bits.length; w++) {
        for (let x = bits[w]!; x !== 0; x &= x - 1) members.push(w * 32 + 31 - Math.clz32(x & -x));
      }
      id = this.intern(this.family.union(members)).id;
      if (!known) {
        known = [];
        this.unions.set(hash, known);
      }
      known.push({ bits: bits.slice(), id });
    }
    bits.fill(0);
    return id;
  }

  /**
   * The id here of a relation from another table (another version of the policy). Found by its
   * text; a new one shares the other's set and rules, so nothing is recomputed.
   */
  adopt(relation: Relation): number {
    const known = this.byJson.get(relation.json);
    if (known) return known.id;
    const own = { id: this.list.length, set: relation.set, rules: relation.rules, json: relation.json };
    this.list.push(own);
    this.byJson.set(own.json, own);
    return own.id;
  }

  /** The same innermost block, or blocks joined by an association: everything is open. */
  private fullyOpen(from: DeviceView, to: DeviceView): boolean {
    if (from.block !== null && from.block === to.block) return true;
    if (from.linked.size === 0) return false;
    for (const b of to.within) if (from.linked.has(b)) return true;
    return false;
  }

  private intern(set: PortSet): Relation {
    const f = flat(set);
    const hash = hashWords(f);
    let same = this.byHash.get(hash);
    const known = same?.find((x) => sameWords(x.flat, f));
    if (known) return known.relation;
    const rules = toAccessRules(set);
    const json = JSON.stringify(rules);
    let relation = this.byJson.get(json);
    if (!relation) {
      relation = { id: this.list.length, set, rules, json };
      this.list.push(relation);
      this.byJson.set(json, relation);
    }
    if (!same) {
      same = [];
      this.byHash.set(hash, same);
    }
    same.push({ flat: f, relation });
    return relation;
  }
}

interface KnownUnion {
  readonly bits: Uint32Array;
  readonly id: number;
}

/** Two 32-bit FNV-style mixes of the words, as one 53-bit number (equal words: equal hash). */
function hashWords(words: ArrayLike<number>, h1 = 0x811c9dc5, h2 = 0x2545f491): number {
  for (let i = 0; i < words.length; i++) {
    const v = words[i]!;
    h1 = Math.imul(h1 ^ v, 0x01000193);
    h2 = Math.imul(h2 ^ v, 0x5bd1e995);
    h2 ^= h2 >>> 13;
  }
  return (h1 >>> 0) * 0x200000 + (h2 >>> 11);
}

function sameWords(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A port set as numbers: flags, then each protocol's span count and spans. */
function flat(s: PortSet): number[] {
  const out = [(s.other ? 1 : 0) | (s.icmp ? 2 : 0), s.tcp.length];
  for (const [a, b] of s.tcp) out.push(a, b);
  out.push(s.udp.length);
  for (const [a, b] of s.udp) out.push(a, b);
  return out;
}
