import { type BatchOutcome, EnrollmentBatcher, MAX_DEFERRALS } from '../../src/services/enrollment-batcher';

/** A batch `run` whose batches finish when the test says, with the outcomes it says. */
class ScriptedRun {
  readonly calls: Array<{
    queue: string;
    requests: string[];
    finish(out: BatchOutcome<string>[] | Error): void;
  }> = [];

  readonly run = (queue: string, requests: string[]) =>
    new Promise<BatchOutcome<string>[]>((resolve, reject) => {
      this.calls.push({
        queue,
        requests,
        finish: (out) => (out instanceof Error ? reject(out) : resolve(out)),
      });
    });

  /** Finishes call `i` with every request done as `<request>!`. */
  done(i: number): void {
    const call = this.calls[i]!;
    call.finish(call.requests.map((r) => ({ kind: 'done', value: `${r}!` })));
  }
}

/** Lets every pending promise callback run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('EnrollmentBatcher', () => {
  it('runs a lone request at once, in a batch of its own', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run);
    const a = batcher.submit('acct', 'a');
    expect(s.calls.map((c) => c.requests)).toEqual([['a']]);
    s.done(0);
    await expect(a).resolves.toBe('a!');
    expect(batcher.pending).toBe(0);
  });

  it('puts what arrives while a batch is in flight into the next batch, together and in order', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run);
    const first = batcher.submit('acct', 'a');
    const rest = ['b', 'c', 'd'].map((r) => batcher.submit('acct', r));
    await settle();
    expect(s.calls).toHaveLength(1);
    expect(batcher.pending).toBe(3);
    s.done(0);
    await expect(first).resolves.toBe('a!');
    expect(s.calls.map((c) => c.requests)).toEqual([['a'], ['b', 'c', 'd']]);
    s.done(1);
    await expect(Promise.all(rest)).resolves.toEqual(['b!', 'c!', 'd!']);
  });

  it('keeps one batch in flight per queue, and queues apart', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run);
    const results = [batcher.submit('x', 'x1'), batcher.submit('y', 'y1'), batcher.submit('x', 'x2')];
    expect(s.calls.map((c) => [c.queue, c.requests])).toEqual([
      ['x', ['x1']],
      ['y', ['y1']],
    ]);
    s.done(1);
    s.done(0);
    await settle();
    expect(s.calls.map((c) => [c.queue, c.requests])).toEqual([
      ['x', ['x1']],
      ['y', ['y1']],
      ['x', ['x2']],
    ]);
    s.done(2);
    await expect(Promise.all(results)).resolves.toEqual(['x1!', 'y1!', 'x2!']);
  });

  it('fails a request alone, and puts one back ahead of later arrivals (or into another queue)', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run);
    const blocker = batcher.submit('acct', 'first');
    const [bad, ok, back, moved] = ['bad', 'ok', 'back', 'moved'].map((r) => batcher.submit('acct', r));
    s.done(0);
    await blocker;
    const late = batcher.submit('acct', 'late');
    s.calls[1]!.finish([
      { kind: 'failed', error: new Error('bad request') },
      { kind: 'done', value: 'ok!' },
      { kind: 'again' },
      { kind: 'again', queue: 'other' },
    ]);
    await expect(bad).rejects.toThrow('bad request');
    await expect(ok).resolves.toBe('ok!');
    await settle();
    // Each queue has its batch: the one put back first, ahead of the late one.
    const next = s.calls.slice(2).map((c) => [c.queue, c.requests]);
    expect(next).toHaveLength(2);
    expect(next).toEqual(
      expect.arrayContaining([
        ['acct', ['back', 'late']],
        ['other', ['moved']],
      ]),
    );
    s.done(2);
    s.done(3);
    await expect(Promise.all([back, late, moved])).resolves.toEqual(['back!', 'late!', 'moved!']);
  });

  it('fails the whole batch when its run throws, and runs the next one still', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run);
    const a = batcher.submit('acct', 'a');
    const b = batcher.submit('acct', 'b');
    s.calls[0]!.finish(new Error('database gone'));
    await expect(a).rejects.toThrow('database gone');
    await settle();
    s.done(1);
    await expect(b).resolves.toBe('b!');
  });

  it('fails every request of a batch that answers for a different number of them', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run);
    const a = batcher.submit('acct', 'a');
    s.calls[0]!.finish([]);
    await expect(a).rejects.toThrow('different number');
  });

  it('takes at most maxBatch requests per batch', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run, 2);
    const all = ['a', 'b', 'c', 'd'].map((r) => batcher.submit('acct', r));
    s.done(0);
    await settle();
    s.done(1);
    await settle();
    s.done(2);
    await expect(Promise.all(all)).resolves.toEqual(['a!', 'b!', 'c!', 'd!']);
    expect(s.calls.map((c) => c.requests)).toEqual([['a'], ['b', 'c'], ['d']]);
  });

  it('fails a request put back more than MAX_DEFERRALS times', async () => {
    const s = new ScriptedRun();
    const batcher = new EnrollmentBatcher(s.run);
    const failed = expect(batcher.submit('acct', 'a')).rejects.toThrow('kept being put back');
    for (let i = 0; i <= MAX_DEFERRALS; i++) {
      s.calls[i]!.finish([{ kind: 'again' }]);
      await settle();
    }
    await failed;
    expect(s.calls).toHaveLength(MAX_DEFERRALS + 1);
  });
});
