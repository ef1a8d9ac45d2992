import fc from 'fast-check';
import { MAX_BATCH, PublishBatcher } from '../../src/events/publish-batcher';

/** A sender whose batches the test completes (or fails) by hand, one at a time. */
function manualSender() {
  const batches: string[][] = [];
  const waiting: Array<{ resolve(): void; reject(e: Error): void }> = [];
  const send = (payloads: string[]) =>
    new Promise<void>((resolve, reject) => {
      batches.push(payloads);
      waiting.push({ resolve, reject });
    });
  const settle = async (fail?: Error) => {
    const w = waiting.shift()!;
    if (fail) w.reject(fail);
    else w.resolve();
    await new Promise((r) => setImmediate(r));
  };
  return { batches, waiting, send, settle };
}

describe('PublishBatcher', () => {
  it('sends the first payload at once and what comes meanwhile as the next batch', async () => {
    const s = manualSender();
    const b = new PublishBatcher(s.send);
    const done: string[] = [];
    const pub = (p: string) => b.publish(p).then(() => done.push(p));
    pub('a');
    pub('b');
    pub('c');
    expect(s.batches).toEqual([['a']]);
    await s.settle();
    expect(done).toEqual(['a']);
    expect(s.batches).toEqual([['a'], ['b', 'c']]);
    pub('d');
    await s.settle();
    expect(done).toEqual(['a', 'b', 'c']);
    expect(s.batches).toEqual([['a'], ['b', 'c'], ['d']]);
    await s.settle();
    await b.idle();
    expect(done).toEqual(['a', 'b', 'c', 'd']);
    expect(s.waiting).toHaveLength(0);
  });

  it('a failed batch rejects only its own publishes; the next batch still goes', async () => {
    const s = manualSender();
    const b = new PublishBatcher(s.send);
    const a = b.publish('a');
    const bc = [b.publish('b'), b.publish('c')];
    const d = b.publish('d');
    await s.settle();
    await expect(a).resolves.toBeUndefined();
    expect(s.batches[1]).toEqual(['b', 'c', 'd']);
    await s.settle(new Error('connection lost'));
    for (const p of [...bc, d]) await expect(p).rejects.toThrow('connection lost');
    const e = b.publish('e');
    expect(s.batches[2]).toEqual(['e']);
    await s.settle();
    await expect(e).resolves.toBeUndefined();
  });

  it('cuts a long queue into batches of at most MAX_BATCH', async () => {
    const s = manualSender();
    const b = new PublishBatcher(s.send);
    const all = Array.from({ length: MAX_BATCH * 2 + 3 }, (_, i) => b.publish(String(i)));
    while (s.waiting.length > 0) await s.settle();
    await Promise.all(all);
    expect(s.batches.map((x) => x.length)).toEqual([1, MAX_BATCH, MAX_BATCH, 2]);
  });

  it('property: every payload is sent exactly once, in publish order, one batch in flight at a time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constant('settle' as const), fc.constant('fail' as const), fc.nat(3)), {
          maxLength: 60,
        }),
        async (steps) => {
          const s = manualSender();
          const b = new PublishBatcher(s.send);
          const outcome = new Map<string, 'ok' | 'failed'>();
          let n = 0;
          let inFlightMax = 0;
          for (const step of steps) {
            if (typeof step === 'number') {
              for (let i = 0; i <= step; i++) {
                const p = String(n++);
                b.publish(p).then(
                  () => outcome.set(p, 'ok'),
                  () => outcome.set(p, 'failed'),
                );
              }
            } else if (s.waiting.length > 0) await s.settle(step === 'fail' ? new Error('x') : undefined);
            inFlightMax = Math.max(inFlightMax, s.waiting.length);
          }
          while (s.waiting.length > 0) await s.settle();
          await b.idle();
          expect(inFlightMax).toBeLessThanOrEqual(1);
          expect(s.batches.flat()).toEqual(Array.from({ length: n }, (_, i) => String(i)));
          expect(outcome.size).toBe(n);
        },
      ),
      { numRuns: 200 },
    );
  });
});
