import { createHash } from 'node:crypto';
import { parseIpv4Cidr } from '@trellis/proto';
import { DomainError } from './errors';

/** Where a device's address may come from: inside one policy block (a CIDR), outside others. */
export interface AddressScope {
  /** The block the address must lie in (a CIDR inside the overlay prefix). */
  within?: string;
  /** Blocks it must not lie in (the policy's other blocks: an address there would put it in them). */
  avoid?: readonly string[];
}

/** 100.64.0.0/10: 2^22 addresses. */
const BASE = (100 << 24) | (64 << 16);
const PREFIX_SIZE = 1 << 22;

/** Host offsets that would end in .0 or .255 are skipped: some stacks treat them specially. */
function usableOffset(offset: number): boolean {
  const last = offset & 0xff;
  return last !== 0 && last !== 255;
}

/** Number of usable addresses in the whole /10. */
export const FULL_POOL_SIZE = (() => {
  // Every /24 inside loses .0 and .255.
  return (PREFIX_SIZE / 256) * 254;
})();

export function offsetToAddress(offset: number): string {
  const n = (BASE + offset) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** Offsets [first, end) of a CIDR relative to the pool's base (clamped to the pool). */
function offsetRange(cidr: string): [number, number] {
  const parsed = parseIpv4Cidr(cidr);
  if (!parsed) throw new Error(`not a CIDR: ${cidr}`);
  const first = parsed.base - (BASE >>> 0);
  const size = 2 ** (32 - parsed.bits);
  return [Math.max(0, first), Math.min(PREFIX_SIZE, first + size)];
}

/** The index of the first usable address at or after `offset`. */
function offsetToIndexCeil(offset: number): number {
  const block = Math.floor(offset / 256);
  const within = offset % 256;
  return block * 254 + Math.max(0, Math.min(254, within - 1 + (within === 0 ? 1 : 0)));
}

/** The i-th usable address (0-based) of the pool. */
function indexToOffset(i: number): number {
  return Math.floor(i / 254) * 256 + (i % 254) + 1;
}

export class AddressPoolExhaustedError extends DomainError {
  constructor(poolSize: number, block?: string) {
    super(
      507,
      'address_pool_exhausted',
      block === undefined
        ? `no free overlay address left in this account (pool of ${poolSize})`
        : `no free overlay address left in the block ${block}`,
    );
  }
}

/**
 * Picks overlay addresses. Pure: the caller says which addresses are taken (in use or held back for
 * the grace period). Probing starts at a point derived from the device's public key, so the same
 * key tends to get the same address even in a fresh database, and walks forward from there.
 */
export class AddressAllocator {
  readonly poolSize: number;

  constructor(opts: { poolSize?: number } = {}) {
    this.poolSize = Math.min(opts.poolSize ?? FULL_POOL_SIZE, FULL_POOL_SIZE);
    if (!Number.isInteger(this.poolSize) || this.poolSize < 1) throw new Error('poolSize must be >= 1');
  }

  /** Every pool address of the scope once, in the probing order for this key. */
  *probeOrder(publicKey: string, scope: AddressScope = {}): Generator<string> {
    const digest = createHash('sha256').update(publicKey).digest();
    const avoid = (scope.avoid ?? []).map(offsetRange);
    const avoided = (offset: number) => avoid.some(([a, b]) => offset >= a && offset < b);
    const [low, high] = scope.within === undefined ? [0, PREFIX_SIZE] : offsetRange(scope.within);
    // Walk the pool's indexes that fall in [low, high): a block's addresses, not the whole pool's.
    const first = Math.max(0, offsetToIndexCeil(low));
    const end = Math.min(this.poolSize, offsetToIndexCeil(high));
    const size = end - first;
    if (size <= 0) return;
    const start = digest.readUInt32BE(0) % size;
    for (let i = 0; i < size; i++) {
      const offset = indexToOffset(first + ((start + i) % size));
      if (usableOffset(offset) && !avoided(offset)) yield offsetToAddress(offset);
    }
  }

  allocate(publicKey: string, taken: ReadonlySet<string>): string {
    if (taken.size < this.poolSize) {
      for (const address of this.probeOrder(publicKey)) if (!taken.has(address)) return address;
    }
    throw new AddressPoolExhaustedError(this.poolSize);
  }

  contains(address: string): boolean {
    const parts = address.split('.').map(Number);
    if (parts.length !== 4) return false;
    const n = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
    const offset = n - (BASE >>> 0);
    if (offset < 0 || offset >= PREFIX_SIZE || !usableOffset(offset)) return false;
    const index = Math.floor(offset / 256) * 254 + (offset % 256) - 1;
    return index < this.poolSize;
  }
}
