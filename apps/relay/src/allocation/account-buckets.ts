import { TokenBucket, type TokenBucketRate } from '@trellis/reflector';

interface Shared {
  bucket: TokenBucket;
  allocations: number;
}

/** One packet budget per account, shared by all its allocations and dropped with the last of them. */
export class AccountBuckets {
  private readonly accounts = new Map<string, Shared>();

  constructor(
    private readonly rate: TokenBucketRate,
    private readonly now: () => number,
  ) {}

  acquire(accountId: string): TokenBucket {
    let shared = this.accounts.get(accountId);
    if (!shared) {
      shared = { bucket: new TokenBucket(this.rate, this.now()), allocations: 0 };
      this.accounts.set(accountId, shared);
    }
    shared.allocations++;
    return shared.bucket;
  }

  release(accountId: string): void {
    const shared = this.accounts.get(accountId);
    if (!shared) return;
    if (--shared.allocations <= 0) this.accounts.delete(accountId);
  }

  get size(): number {
    return this.accounts.size;
  }
}
