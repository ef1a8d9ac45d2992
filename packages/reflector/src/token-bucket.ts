/** Token-bucket settings: `capacity` tokens at most, refilled at `refillPerSecond`. */
export interface TokenBucketOptions {
  capacity: number;
  refillPerSecond: number;
  /** Most sources tracked at once; beyond that, new sources are refused until old ones go idle. */
  maxSources: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * One token bucket per key (a source IP), on an injected clock in milliseconds. Memory stays bounded:
 * a bucket that has refilled completely carries no information and is dropped on the next sweep.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();

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
      bucket = { tokens: this.options.capacity, updatedAt: now };
      this.buckets.set(key, bucket);
    }
    this.refill(bucket, now);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  get trackedSources(): number {
    return this.buckets.size;
  }

  private refill(bucket: Bucket, now: number): void {
    const elapsed = Math.max(0, now - bucket.updatedAt) / 1000;
    bucket.tokens = Math.min(this.options.capacity, bucket.tokens + elapsed * this.options.refillPerSecond);
    bucket.updatedAt = now;
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      this.refill(bucket, now);
      if (bucket.tokens >= this.options.capacity) this.buckets.delete(key);
    }
  }
}
