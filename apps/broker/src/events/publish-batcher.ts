/** At most this many payloads go in one statement (NOTIFY payloads are under 8,000 bytes each). */
export const MAX_BATCH = 256;

interface Pending {
  payload: string;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Sends payloads in publish order, one batch in flight at a time: what is published while a batch
 * is out goes in the next one. A reconnection storm publishes two events per device; sent one
 * round trip each on one connection, the last device of a thousand waited for 2,000 round trips
 * before its netmap (bench failover).
 */
export class PublishBatcher {
  private pending: Pending[] = [];
  private flushing: Promise<void> | null = null;

  /** `sendBatch` sends every payload, in order, or none of them (one statement). */
  constructor(private readonly sendBatch: (payloads: string[]) => Promise<void>) {}

  publish(payload: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ payload, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Resolves once nothing is pending or in flight. */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_BATCH);
      try {
        await this.sendBatch(batch.map((p) => p.payload));
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.flushing = null;
  }
}
