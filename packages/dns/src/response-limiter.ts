import { isIPv4 } from 'node:net';

export interface ResponseLimits {
  /** Responses per second one source network gets over UDP. */
  perSecond: number;
  /** How many may come at once after a quiet spell. */
  burst: number;
  /** Past the limit, every `slip`-th response goes out truncated (empty, TC set), the rest not at all. */
  slip: number;
  /** Most source networks tracked at once (the oldest are forgotten first). */
  maxSources: number;
}

export const DEFAULT_RESPONSE_LIMITS: ResponseLimits = {
  perSecond: 100,
  burst: 200,
  slip: 2,
  maxSources: 100_000,
};

export type LimitVerdict = 'send' | 'slip' | 'drop';

interface Bucket {
  tokens: number;
  at: number;
  over: number;
}

/**
 * Response-rate limiting for UDP (a sans-IO core: the caller passes the time): a token bucket per
 * source network (/24 for IPv4, /56 for IPv6), so a forged source cannot make the server flood a
 * victim. A real client that is limited still gets a truncated answer now and then and retries
 * over TCP, which is not limited.
 */
export class ResponseLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly limits: ResponseLimits = DEFAULT_RESPONSE_LIMITS) {}

  verdict(source: string, now: number): LimitVerdict {
    const key = networkOf(source);
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: the map stays in order of last use
    } else {
      b = { tokens: this.limits.burst, at: now, over: 0 };
      if (this.buckets.size >= this.limits.maxSources) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    this.buckets.set(key, b);
    b.tokens = Math.min(this.limits.burst, b.tokens + ((now - b.at) / 1000) * this.limits.perSecond);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.over = 0;
      return 'send';
    }
    b.over += 1;
    return this.limits.slip > 0 && b.over % this.limits.slip === 0 ? 'slip' : 'drop';
  }

  get trackedSources(): number {
    return this.buckets.size;
  }
}

/** The network a source is limited as: its /24 (IPv4) or /56 (IPv6). */
export function networkOf(address: string): string {
  const v4 = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (isIPv4(v4)) return `${v4.slice(0, v4.lastIndexOf('.'))}.0/24`;
  const groups = expandIpv6(address);
  return `${groups.slice(0, 3).join(':')}:${groups[3]!.slice(0, 2)}00::/56`;
}

function expandIpv6(address: string): string[] {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => g.padStart(4, '0'));
}
