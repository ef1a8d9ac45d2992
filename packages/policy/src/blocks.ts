import { ipv4ToInt, parseIpv4Cidr } from '@trellis/proto';
import type { Locator, PolicyIssue } from './locations';
import type { Policy, PolicyBlock } from './types';

const maskOf = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);

/**
 * The `cidrs` section as a tree. Two prefixes either nest or are disjoint, so the only way blocks
 * can clash is the same prefix under two names.
 */
export function buildBlocks(
  cidrs: Record<string, string>,
  at: Locator,
): { blocks: PolicyBlock[]; errors: PolicyIssue[] } {
  const errors: PolicyIssue[] = [];
  const parsed: Array<{ name: string; cidr: string; base: number; bits: number }> = [];
  const byPrefix = new Map<string, string>();
  for (const [name, cidr] of Object.entries(cidrs)) {
    const c = parseIpv4Cidr(cidr);
    if (!c) continue; // the schema reported it
    const key = `${c.base}/${c.bits}`;
    const twin = byPrefix.get(key);
    if (twin !== undefined) {
      errors.push(
        at.issue(`block "${name}" has the same prefix ${cidr} as block "${twin}"`, ['cidrs', name]),
      );
      continue;
    }
    byPrefix.set(key, name);
    parsed.push({ name, cidr, ...c });
  }
  // Wider blocks first, so a block's parent is already placed when it is.
  const order = parsed.map((_, i) => i).sort((a, b) => parsed[a]!.bits - parsed[b]!.bits);
  const blocks: PolicyBlock[] = parsed.map((p) => ({
    ...p,
    parent: null,
    ...at.position(['cidrs', p.name]),
  }));
  for (const i of order) {
    const inner = parsed[i]!;
    let parent: number | null = null;
    for (const j of order) {
      const outer = parsed[j]!;
      if (outer.bits >= inner.bits) break;
      if ((inner.base & maskOf(outer.bits)) >>> 0 === outer.base) parent = j; // the last is the narrowest
    }
    blocks[i] = { ...blocks[i]!, parent };
  }
  return { blocks, errors };
}

interface BlockIndex {
  byName: Map<string, number>;
  /** Prefix lengths present, longest first, each with its blocks by masked base. */
  levels: Array<{ bits: number; mask: number; blocks: Map<number, number> }>;
  /** Each block with every block around it (itself included). */
  within: number[][];
}

const indexes = new WeakMap<Policy, BlockIndex>();

function indexOf(policy: Policy): BlockIndex {
  let ix = indexes.get(policy);
  if (ix) return ix;
  const levels = new Map<number, Map<number, number>>();
  policy.blocks.forEach((b, i) => {
    let level = levels.get(b.bits);
    if (!level) {
      level = new Map();
      levels.set(b.bits, level);
    }
    level.set(b.base, i);
  });
  ix = {
    byName: new Map(policy.blocks.map((b, i) => [b.name, i])),
    levels: [...levels]
      .sort((a, b) => b[0] - a[0])
      .map(([bits, blocks]) => ({ bits, mask: maskOf(bits), blocks })),
    within: policy.blocks.map((_, i) => {
      const chain: number[] = [];
      for (let j: number | null = i; j !== null; j = policy.blocks[j]!.parent) chain.push(j);
      return chain;
    }),
  };
  indexes.set(policy, ix);
  return ix;
}

/** The index of the narrowest block holding `address`; null when none does (or it is no address). */
export function innermostBlockIndex(policy: Policy, address: string): number | null {
  const n = ipv4ToInt(address);
  if (n === null) return null;
  for (const level of indexOf(policy).levels) {
    const hit = level.blocks.get((n & level.mask) >>> 0);
    if (hit !== undefined) return hit;
  }
  return null;
}

/** Block `i` and every block around it. */
export const blocksAround = (policy: Policy, i: number): readonly number[] => indexOf(policy).within[i] ?? [];

export const blockIndexByName = (policy: Policy, name: string): number | undefined =>
  indexOf(policy).byName.get(name);

/** The prefix of a named block, to allocate a device's address inside it. */
export function cidrBlock(policy: Policy, name: string): string | undefined {
  const i = blockIndexByName(policy, name);
  return i === undefined ? undefined : policy.blocks[i]!.cidr;
}

/** The name of the narrowest block holding `address`. */
export function innermostBlock(policy: Policy, address: string): string | undefined {
  const i = innermostBlockIndex(policy, address);
  return i === null ? undefined : policy.blocks[i]!.name;
}
