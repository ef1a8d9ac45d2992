/** Token-bucket rate: `capacity` tokens at most (the burst), refilled at `refillPerSecond`. */
export interface TokenBucketRate {
  capacity: number;
  refillPerSecond: number;
}

/** Token-bucket settings of a keyed limiter. */
export interface TokenBucketOptions extends TokenBucketRate {
  /** Most sources tracked at once; beyond that, new sources are refused until old ones go idle. */
  maxSources: number;
}

/** One token bucket on a caller-supplied clock in milliseconds; starts full. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly rate: TokenBucketRate,
    now: number,
  ) {
    this.tokens = rate.capacity;
    this.updatedAt = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket has refilled completely, i.e. it carries no information any more. */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.rate.capacity;
  }

  private refill(now: number): void {
    if (now <= this.updatedAt) return;
    const elapsed = (now - this.updatedAt) / 1000;
    this.tokens = Math.min(this.rate.capacity, this.tokens + elapsed * this.rate.refillPerSecond);
    this.updatedAt = now;
  }
}

/**
 * One token bucket per key (a source IP), on an injected clock in milliseconds. Memory stays bounded:
 * a bucket that has refilled completely carries no information and is dropped on the next sweep.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly options: TokenBucketOptions,
    private readonly now: () => number,
  ) {}

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.options.maxSources) this.sweep(now);
      if (this.buckets.size >= this.options.maxSources) return false;
      bucket = new TokenBucket(this.options, now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(now);
  }

  get trackedSources(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(key);
  }
}
