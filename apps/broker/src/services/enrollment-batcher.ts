/** What a batch did with one of its requests. */
export type BatchOutcome<R> =
  | { kind: 'done'; value: R }
  | { kind: 'failed'; error: unknown }
  /** Not this time: in the next batch of `queue` (of the same queue when not given). */
  | { kind: 'again'; queue?: string };

/** Carries out one batch of a queue, an outcome per request in order; a throw fails them all. */
export type RunBatch<Q, R> = (queue: string, requests: Q[]) => Promise<BatchOutcome<R>[]>;

interface Waiting<Q, R> {
  request: Q;
  /** Batches it was put back from ('again'): bounded, so nothing is put back forever. */
  deferrals: number;
  resolve(value: R): void;
  reject(err: unknown): void;
}

/** Times a request may be put back ('again') before it fails. */
export const MAX_DEFERRALS = 8;
/** Requests carried out in one batch at most. */
export const MAX_BATCH = 64;

/**
 * Group commit: one batch in flight per queue (an account), and whatever is submitted to that
 * queue meanwhile goes in the next batch, together. Under load a batch's transaction takes the
 * account's serial lock and commits once for many requests; alone, a request goes at once (no
 * waiting window). It does no I/O and keeps no clock: `run` does the work.
 */
export class EnrollmentBatcher<Q, R> {
  private readonly waiting = new Map<string, Waiting<Q, R>[]>();
  private readonly running = new Set<string>();

  constructor(
    private readonly run: RunBatch<Q, R>,
    private readonly maxBatch = MAX_BATCH,
  ) {}

  submit(queue: string, request: Q): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.enqueue(queue, { request, deferrals: 0, resolve, reject }, false);
    });
  }

  /** Requests waiting for a batch (not those in one in flight). */
  get pending(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  private enqueue(queue: string, item: Waiting<Q, R>, first: boolean): void {
    const q = this.waiting.get(queue) ?? [];
    this.waiting.set(queue, q);
    // One put back waited longest: it goes first.
    if (first) q.unshift(item);
    else q.push(item);
    if (!this.running.has(queue)) void this.drain(queue);
  }

  private async drain(queue: string): Promise<void> {
    this.running.add(queue);
    try {
      for (;;) {
        const q = this.waiting.get(queue);
        if (!q || q.length === 0) break;
        const batch = q.splice(0, this.maxBatch);
        const outcomes = await this.runSafely(queue, batch);
        const putBack: Array<[string, Waiting<Q, R>]> = [];
        for (const [i, item] of batch.entries()) {
          const outcome = outcomes[i]!;
          if (outcome.kind === 'done') item.resolve(outcome.value);
          else if (outcome.kind === 'failed') item.reject(outcome.error);
          else if (++item.deferrals > MAX_DEFERRALS) item.reject(new Error('enrollment kept being put back'));
          else putBack.push([outcome.queue ?? queue, item]);
        }
        // Back in their order, ahead of what arrived meanwhile.
        for (const [to, item] of putBack.reverse()) this.enqueue(to, item, true);
      }
    } finally {
      this.running.delete(queue);
      if ((this.waiting.get(queue)?.length ?? 0) === 0) this.waiting.delete(queue);
    }
  }

  private async runSafely(queue: string, batch: Waiting<Q, R>[]): Promise<BatchOutcome<R>[]> {
    try {
      const outcomes = await this.run(
        queue,
        batch.map((b) => b.request),
      );
      if (outcomes.length !== batch.length)
        throw new Error('a batch answered for a different number of requests');
      return outcomes;
    } catch (error) {
      return batch.map(() => ({ kind: 'failed', error }));
    }
  }
}
