/** Cached answers to "is this WireGuard key an enrolled device?" for the reflector's hot path. */
export class EnrolledKeyCache {
  private readonly known = new Map<string, { enrolled: boolean; at: number }>();

  constructor(
    private readonly lookup: (publicKey: string) => Promise<boolean>,
    private readonly opts: { positiveMs: number; negativeMs: number; max: number } = {
      positiveMs: 60_000,
      negativeMs: 5_000,
      max: 100_000,
    },
    private readonly now: () => number = Date.now,
  ) {}

  async isEnrolled(publicKey: string): Promise<boolean> {
    const hit = this.known.get(publicKey);
    const ttl = hit?.enrolled ? this.opts.positiveMs : this.opts.negativeMs;
    if (hit && this.now() - hit.at < ttl) return hit.enrolled;
    const enrolled = await this.lookup(publicKey);
    if (this.known.size >= this.opts.max) this.known.clear(); // junk keys must not grow memory
    this.known.set(publicKey, { enrolled, at: this.now() });
    return enrolled;
  }

  /** A device joined (known at once) or was removed (never trusted from the cache again). */
  set(publicKey: string, enrolled: boolean): void {
    this.known.set(publicKey, { enrolled, at: this.now() });
  }
}
