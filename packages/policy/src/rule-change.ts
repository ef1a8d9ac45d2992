import type { DeviceView } from './match';
import type { Atom } from './selectors';
import type { Policy, PolicyRule } from './types';

/** Past this share of changed rules, looking for the pairs they touch saves nothing. */
const MAX_CHANGED_SHARE = 0.25;

/**
 * The rules that differ between two versions of a policy whose blocks and associations are the
 * same. What a device may open on another is the union of the ports of the rules both match (or
 * everything, by block or association), so a pair of devices that matches no added and no removed
 * rule has the same access under both versions: its relation can be taken over, not computed.
 */
export class RuleChange {
  private constructor(
    /** Bits over the new version's rules: the added ones. */
    private readonly added: Uint32Array,
    private readonly addedWords: number[],
    /** Bits over the old version's rules: the removed ones. */
    private readonly removed: Uint32Array,
    private readonly removedWords: number[],
    readonly changedRules: number,
  ) {}

  /**
   * The change from `before` to `after`; undefined when their blocks or associations differ (every
   * block-based relation could change) or when so many rules changed that a full computation is as
   * cheap. Rules are compared by what they do (the atoms of each side and the ports), not by text.
   */
  static between(before: Policy, after: Policy): RuleChange | undefined {
    if (!sameBlocks(before, after)) return undefined;
    const oldKeys = ruleKeys(before.rules);
    const unmatched = new Map<string, number[]>();
    oldKeys.forEach((k, i) => {
      const list = unmatched.get(k);
      if (list) list.push(i);
      else unmatched.set(k, [i]);
    });
    const added: number[] = [];
    ruleKeys(after.rules).forEach((k, i) => {
      const list = unmatched.get(k);
      if (list && list.length > 0) list.pop();
      else added.push(i);
    });
    const removed = [...unmatched.values()].flat();
    const changed = added.length + removed.length;
    if (changed > MAX_CHANGED_SHARE * Math.max(before.rules.length, after.rules.length, 1)) return undefined;
    const a = bitsOf(added, after.rules.length);
    const r = bitsOf(removed, before.rules.length);
    return new RuleChange(a.bits, a.words, r.bits, r.words, changed);
  }

  /**
   * Whether an added or removed rule applies from one device to another: `oldFrom`/`oldTo` are
   * their views under the old version, `newFrom`/`newTo` under the new. False means what `from`
   * may open on `to` is the same under both.
   */
  touches(oldFrom: DeviceView, oldTo: DeviceView, newFrom: DeviceView, newTo: DeviceView): boolean {
    // A rule applies to `to` as a device (dst) or through its routes (routed destinations).
    for (const w of this.addedWords) {
      const to = newTo.dstBits[w]! | newTo.routeBits[w]!;
      if ((newFrom.srcBits[w]! & to & this.added[w]!) !== 0) return true;
    }
    for (const w of this.removedWords) {
      const to = oldTo.dstBits[w]! | oldTo.routeBits[w]!;
      if ((oldFrom.srcBits[w]! & to & this.removed[w]!) !== 0) return true;
    }
    return false;
  }
}

function sameBlocks(a: Policy, b: Policy): boolean {
  const blocks = (p: Policy) => JSON.stringify(p.blocks.map((x) => [x.name, x.cidr, x.parent]));
  const links = (p: Policy) => JSON.stringify(p.associations.map((x) => [x.a, x.b]));
  return blocks(a) === blocks(b) && links(a) === links(b);
}

/**
 * A key per rule: equal keys, the same devices on each side and the same ports. A side matches a
 * device holding an atom of any of its sets; sets (groups, shared by the rules naming them) are
 * keyed once. Two sides with the same atoms split differently get different keys: such a rule
 * counts as changed, which costs time, never correctness.
 */
function ruleKeys(rules: readonly PolicyRule[]): string[] {
  const setKeys = new Map<ReadonlySet<Atom>, string>();
  const setKey = (s: ReadonlySet<Atom>) => {
    let k = setKeys.get(s);
    if (k === undefined) {
      k = [...s].sort().join('\n');
      setKeys.set(s, k);
    }
    return k;
  };
  const side = (sets: readonly ReadonlySet<Atom>[]) => sets.map(setKey).sort().join('\u0001');
  return rules.map(
    (r) => `${side(r.src)}\u0002${side(r.dst)}\u0002${r.dstRoutes.join(' ')}\u0002${JSON.stringify(r.ports)}`,
  );
}

function bitsOf(indexes: readonly number[], count: number): { bits: Uint32Array; words: number[] } {
  const bits = new Uint32Array(Math.ceil(count / 32));
  for (const i of indexes) bits[i >>> 5]! |= 1 << (i & 31);
  const words: number[] = [];
  bits.forEach((w, i) => {
    if (w !== 0) words.push(i);
  });
  return { bits, words };
}
