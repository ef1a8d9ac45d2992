import { ipv4InCidr } from '@trellis/proto';
import { and, count, eq, gt, inArray, lte, or, sql } from 'drizzle-orm';
import type { Db } from '../db/database';
import { type DeviceRow, devices, releasedAddresses } from '../db/schema';
import {
  type AddressAllocator,
  AddressPoolExhaustedError,
  type AddressScope,
} from '../domain/address-allocator';
import type { Tx } from './tx';

/**
 * Candidates asked about per query: few at first (in a sparse pool the first is almost always
 * free, and each candidate is a query parameter: 256 of them cost an enrollment more CPU than all
 * its other statements), then many where the pool is crowded.
 */
const FIRST_PROBE_BATCH = 8;
const PROBE_BATCH = 256;

/**
 * The overlay addresses of an account's devices: a free one for each new device, and a removed
 * device's address held back for the grace period (and given back to the same key within it; a
 * virtual device's, having no key, to no one).
 */
export class OverlayAddresses {
  constructor(
    private readonly db: Db,
    private readonly allocator: AddressAllocator,
    /** Seconds a removed device's address stays out of allocation. */
    private readonly graceSeconds: number,
  ) {}

  /** Holds a removed device's address back from allocation, starting now. */
  async release(tx: Tx, accountId: string, removed: DeviceRow): Promise<void> {
    await tx
      .insert(releasedAddresses)
      .values({ accountId, address: removed.address, publicKey: removed.publicKey })
      .onConflictDoUpdate({
        target: [releasedAddresses.accountId, releasedAddresses.address],
        set: { publicKey: removed.publicKey, releasedAt: sql`now()` },
      });
  }

  /**
   * An address for a new device in `scope` (a policy block, outside the others): its own again
   * within the grace period when that is in scope, else a free one. `of` is the device's key, or
   * for a virtual device (no key, nothing to give back) the seed its probing starts from.
   */
  async pick(
    tx: Tx,
    accountId: string,
    of: { publicKey: string } | { seed: string },
    scope: AddressScope = {},
    /** Addresses given to others in this transaction already (a batch's, not inserted yet). */
    exclude: ReadonlySet<string> = new Set(),
  ): Promise<string> {
    const cutoff = this.graceCutoff();
    const ownKey = 'publicKey' in of ? of.publicKey : null;
    // One statement: the held addresses whose grace period is over, and the key's own (taken back).
    const removed = await tx
      .delete(releasedAddresses)
      .where(
        and(
          eq(releasedAddresses.accountId, accountId),
          ownKey === null
            ? lte(releasedAddresses.releasedAt, cutoff)
            : or(lte(releasedAddresses.releasedAt, cutoff), eq(releasedAddresses.publicKey, ownKey)),
        ),
      )
      .returning({
        address: releasedAddresses.address,
        publicKey: releasedAddresses.publicKey,
        at: releasedAddresses.releasedAt,
      });
    // The same machine coming back within the grace period gets its old address again.
    const own = removed.find((r) => ownKey !== null && r.publicKey === ownKey && r.at > cutoff);
    if (own && inScope(own.address, scope)) return own.address;

    const allocator = this.allocator;
    let batch: string[] = [];
    let first = true;
    const seed = 'publicKey' in of ? of.publicKey : of.seed;
    for (const candidate of allocator.probeOrder(seed, scope)) {
      batch.push(candidate);
      if (batch.length < (first ? FIRST_PROBE_BATCH : PROBE_BATCH)) continue;
      const free = await this.firstFree(tx, accountId, batch, exclude);
      if (free) return free;
      // Only a crowded pool gets here: stop early if it is in fact full rather than probe all of it.
      if (first && (await this.takenCount(tx, accountId)) + exclude.size >= allocator.poolSize) break;
      first = false;
      batch = [];
    }
    const free = batch.length ? await this.firstFree(tx, accountId, batch, exclude) : undefined;
    if (free) return free;
    if (scope.within !== undefined) throw new AddressPoolExhaustedError(allocator.poolSize, scope.within);
    throw new AddressPoolExhaustedError(allocator.poolSize);
  }

  /**
   * An address for each new device of a batch (as pick, each its own): the held-back ones freed and
   * taken back in one statement, and every device's first candidates asked about in one more; only
   * a device whose candidates are all taken probes further alone. A full pool fails its device only.
   */
  async pickMany(
    tx: Tx,
    accountId: string,
    wants: ReadonlyArray<{ publicKey: string; scope: AddressScope }>,
  ): Promise<Array<string | AddressPoolExhaustedError>> {
    const cutoff = this.graceCutoff();
    const removed = await tx
      .delete(releasedAddresses)
      .where(
        and(
          eq(releasedAddresses.accountId, accountId),
          or(
            lte(releasedAddresses.releasedAt, cutoff),
            inArray(
              releasedAddresses.publicKey,
              wants.map((w) => w.publicKey),
            ),
          ),
        ),
      )
      .returning({
        address: releasedAddresses.address,
        publicKey: releasedAddresses.publicKey,
        at: releasedAddresses.releasedAt,
      });
    // The same machine coming back within the grace period gets its old address again.
    const own = new Map(removed.filter((r) => r.at > cutoff).map((r) => [r.publicKey, r.address]));
    const firsts = wants.map((w) => {
      const address = own.get(w.publicKey);
      if (address !== undefined && inScope(address, w.scope)) return [address];
      return [...take(this.allocator.probeOrder(w.publicKey, w.scope), FIRST_PROBE_BATCH)];
    });
    const taken = await this.taken(tx, accountId, [...new Set(firsts.flat())]);
    const given = new Set<string>();
    const out: Array<string | AddressPoolExhaustedError> = [];
    for (const [i, w] of wants.entries()) {
      let address = firsts[i]!.find((c) => !taken.has(c) && !given.has(c));
      if (address === undefined) {
        try {
          address = await this.pick(tx, accountId, { publicKey: w.publicKey }, w.scope, given);
        } catch (err) {
          if (!(err instanceof AddressPoolExhaustedError)) throw err;
          out.push(err);
          continue;
        }
      }
      given.add(address);
      out.push(address);
    }
    return out;
  }

  /** Addresses of removed devices still within the grace period. */
  async held(accountId: string): Promise<string[]> {
    const rows = await this.db
      .select({ address: releasedAddresses.address })
      .from(releasedAddresses)
      .where(
        and(eq(releasedAddresses.accountId, accountId), gt(releasedAddresses.releasedAt, this.graceCutoff())),
      );
    return rows.map((r) => r.address);
  }

  private graceCutoff(): Date {
    return new Date(Date.now() - this.graceSeconds * 1000);
  }

  private async takenCount(tx: Tx, accountId: string): Promise<number> {
    const [used] = await tx.select({ n: count() }).from(devices).where(eq(devices.accountId, accountId));
    const [held] = await tx
      .select({ n: count() })
      .from(releasedAddresses)
      .where(eq(releasedAddresses.accountId, accountId));
    return (used?.n ?? 0) + (held?.n ?? 0);
  }

  private async firstFree(
    tx: Tx,
    accountId: string,
    candidates: string[],
    exclude: ReadonlySet<string>,
  ): Promise<string | undefined> {
    const taken = await this.taken(tx, accountId, candidates);
    return candidates.find((c) => !taken.has(c) && !exclude.has(c));
  }

  /** Which of `candidates` are in use or held back, in one round trip. */
  private async taken(tx: Tx, accountId: string, candidates: string[]): Promise<Set<string>> {
    const taken = await tx
      .select({ address: devices.address })
      .from(devices)
      .where(and(eq(devices.accountId, accountId), inArray(devices.address, candidates)))
      .unionAll(
        tx
          .select({ address: releasedAddresses.address })
          .from(releasedAddresses)
          .where(
            and(eq(releasedAddresses.accountId, accountId), inArray(releasedAddresses.address, candidates)),
          ),
      );
    return new Set(taken.map((r) => r.address));
  }
}

function inScope(address: string, scope: AddressScope): boolean {
  if (scope.within !== undefined && !ipv4InCidr(address, scope.within)) return false;
  return !(scope.avoid ?? []).some((block) => ipv4InCidr(address, block));
}

function* take<T>(items: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  let i = 0;
  for (const item of items) {
    yield item;
    if (++i >= n) return;
  }
}
