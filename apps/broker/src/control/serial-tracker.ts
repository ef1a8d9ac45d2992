/**
 * Which of an account's changes a hub has applied, by their serials (sans I/O). Every committed
 * change bumps the account's serial by one and is published with it; events may arrive out of
 * commit order (each instance publishes after its own commit) and may be lost (a publish that
 * failed after the commit, an instance that died between the two, a bus connection that dropped).
 *
 * - `accept` says whether an event still applies: not at or below the watermark (everything up to
 *   it is in the hub) and not older than the last change applied to the same device.
 * - `stalled` says whether the hub missed a change: the database's serial seen at a check is still
 *   above the watermark at the next ones, and the watermark has not moved meanwhile (events still
 *   arriving, late in a busy event loop, are not a loss; a lost one stops the watermark at its gap).
 */
/**
 * How many checks in a row must find the hub stuck behind the database. One was not enough under
 * a reconnection storm: a takeover's hundreds of events, published one by one by a busy instance,
 * held the watermark for a check interval though nothing was lost (bench failover).
 */
export const STALLED_AFTER_CHECKS = 2;

export class SerialTracker {
  /** Every serial up to this one is applied (or was read with the hub's state). */
  private mark: number;
  /** Applied serials above the mark (they arrived before a lower one). */
  private readonly ahead = new Set<number>();
  /** Serial of the last change applied per device (a removal too), for changes above the mark. */
  private readonly lastOf = new Map<string, number>();
  /** The database's serial at the last check, which the mark must reach by the next one. */
  private target: number | null = null;
  /** The mark at the last check. */
  private markAtCheck: number;
  /** Checks in a row that found the mark behind the database and not moved since the one before. */
  private idleChecks = 0;

  constructor(loadedSerial: number) {
    this.mark = loadedSerial;
    this.markAtCheck = loadedSerial;
  }

  get watermark(): number {
    return this.mark;
  }

  /** Records the change `serial` of `deviceId`; false when it is stale and must not be applied. */
  accept(serial: number, deviceId: string): boolean {
    if (serial <= this.mark || this.ahead.has(serial)) return false;
    const stale = (this.lastOf.get(deviceId) ?? Number.NEGATIVE_INFINITY) > serial;
    this.ahead.add(serial);
    while (this.ahead.delete(this.mark + 1)) this.mark += 1;
    if (!stale) this.lastOf.set(deviceId, serial);
    this.forgetBelowMark();
    return !stale;
  }

  /** Called each check with the database's serial; true when the hub must be reloaded. */
  stalled(databaseSerial: number): boolean {
    const stuck = this.target !== null && this.mark < this.target && this.mark === this.markAtCheck;
    this.idleChecks = stuck ? this.idleChecks + 1 : 0;
    this.target = databaseSerial > this.mark ? databaseSerial : null;
    this.markAtCheck = this.mark;
    return this.idleChecks >= STALLED_AFTER_CHECKS;
  }

  /** The hub was reloaded from a state read at `serial`. */
  reloaded(serial: number): void {
    if (serial > this.mark) this.mark = serial;
    for (const s of this.ahead) if (s <= this.mark) this.ahead.delete(s);
    while (this.ahead.delete(this.mark + 1)) this.mark += 1;
    this.target = null;
    this.markAtCheck = this.mark;
    this.idleChecks = 0;
    this.forgetBelowMark();
  }

  private forgetBelowMark(): void {
    // Anything at or below the mark is refused by the first test of accept(): no need to remember it.
    if (this.lastOf.size < 64) return;
    for (const [id, s] of this.lastOf) if (s <= this.mark) this.lastOf.delete(id);
  }
}
