import { BrokerRotation, type BrokerTarget, MAX_ADDRESSES_PER_NAME, type ResolveHost } from '@trellis/proto';

const A = 'https://a.example:8443/';
const B = 'https://b.example:8443/';
const C = 'https://192.0.2.3:8443/';

/** A resolver answering from a table; a missing name fails, as an unknown name does. */
function table(entries: Record<string, string[]>): ResolveHost & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (host: string) => {
    calls.push(host);
    const found = entries[host];
    if (!found) throw new Error(`ENOTFOUND ${host}`);
    return found;
  };
  return Object.assign(resolve, { calls });
}

/** Every target of the round from here on. */
function drain(r: BrokerRotation): BrokerTarget[] {
  const out: BrokerTarget[] = [];
  for (let t = r.take(); t !== null; t = r.take()) out.push(t);
  return out;
}

const urlsOf = (targets: BrokerTarget[]) => targets.map((t) => t.url);

describe('BrokerRotation', () => {
  it('tries every URL once per round, first URL first, every address of a name', async () => {
    const r = new BrokerRotation([A, B, C]);
    await r.newRound(table({ 'a.example': ['10.0.0.1', '10.0.0.2'], 'b.example': ['10.0.1.1'] }));
    expect(drain(r)).toEqual([
      { url: A, address: '10.0.0.1' },
      { url: A, address: '10.0.0.2' },
      { url: B, address: '10.0.1.1' },
      { url: C, address: null },
    ]);
    expect(r.take()).toBeNull();
  });

  it('fails over at once within a round and backs off only after the whole round failed', async () => {
    const r = new BrokerRotation([A, B, C]);
    await r.newRound(table({ 'a.example': ['10.0.0.1'], 'b.example': ['10.0.1.1'] }));
    const tried: string[] = [];
    const verdicts: boolean[] = [];
    for (let t = r.take(); t !== null; t = r.take()) {
      tried.push(t.url);
      verdicts.push(r.retryNow(false)); // each attempt fails
      if (!verdicts.at(-1)) break;
    }
    expect(tried).toEqual([A, B, C]);
    expect(verdicts).toEqual([true, true, false]);
  });

  it('after a dropped connection starts the next round with the instance after it, its own last', async () => {
    const r = new BrokerRotation([A, B, C]);
    const resolve = table({ 'a.example': ['10.0.0.1'], 'b.example': ['10.0.1.1'] });
    await r.newRound(resolve);
    expect(r.take()?.url).toBe(A);
    expect(r.take()?.url).toBe(B); // A failed, B connected
    expect(r.current).toEqual({ url: B, address: '10.0.1.1' });
    expect(r.retryNow(true)).toBe(true); // B dropped: another instance exists, go at once
    expect(r.take()).toBeNull(); // the round is over: a new one is resolved
    await r.newRound(resolve);
    expect(urlsOf(drain(r))).toEqual([C, A, B]);
  });

  it('retries a single instance after backoff, not at once', async () => {
    const r = new BrokerRotation([C]);
    await r.newRound(table({}));
    expect(r.take()).toEqual({ url: C, address: null });
    expect(r.retryNow(true)).toBe(false);
    expect(r.retryNow(false)).toBe(false);
  });

  it('fails over at once between the addresses of one name', async () => {
    const r = new BrokerRotation([A]);
    await r.newRound(table({ 'a.example': ['10.0.0.1', '10.0.0.2'] }));
    expect(r.take()?.address).toBe('10.0.0.1');
    expect(r.retryNow(true)).toBe(true);
    await r.newRound(table({ 'a.example': ['10.0.0.1', '10.0.0.2'] }));
    expect(drain(r).map((t) => t.address)).toEqual(['10.0.0.2', '10.0.0.1']);
  });

  it('keeps the last good addresses when a name stops resolving, and lets the connect resolve a new one', async () => {
    const r = new BrokerRotation([A, B]);
    await r.newRound(table({ 'a.example': ['10.0.0.1', '10.0.0.1', '10.0.0.9'] }));
    expect(drain(r)).toEqual([
      { url: A, address: '10.0.0.1' },
      { url: A, address: '10.0.0.9' },
      { url: B, address: null },
    ]);
    const failing = table({});
    await r.newRound(failing);
    expect(failing.calls.sort()).toEqual(['a.example', 'b.example']);
    expect(drain(r)).toEqual([
      { url: A, address: '10.0.0.1' },
      { url: A, address: '10.0.0.9' },
      { url: B, address: null },
    ]);
  });

  it(`tries at most ${MAX_ADDRESSES_PER_NAME} addresses of one name`, async () => {
    const r = new BrokerRotation([A]);
    const many = Array.from({ length: 20 }, (_, i) => `10.0.0.${i + 1}`);
    await r.newRound(table({ 'a.example': many }));
    expect(drain(r).map((t) => t.address)).toEqual(many.slice(0, MAX_ADDRESSES_PER_NAME));
  });

  it('a round resumes after the last URL even when its address changed', () => {
    const r = new BrokerRotation([A, B, C]);
    r.startRound(new Map([['a.example', ['10.0.0.1']]]));
    expect(r.take()?.url).toBe(A);
    r.retryNow(true);
    r.startRound(new Map([['a.example', ['10.0.0.7']]]));
    expect(urlsOf(drain(r))).toEqual([B, C, A]);
  });

  describe('dial', () => {
    it('opens at once when only IP literals are listed (nothing to resolve)', () => {
      const r = new BrokerRotation([C]);
      const opened: BrokerTarget[] = [];
      const resolve = table({});
      r.dial(resolve, (t) => opened.push(t));
      expect(opened).toEqual([{ url: C, address: null }]);
      expect(resolve.calls).toEqual([]);
    });

    it('resolves names at the start of a round, then opens; a cancelled dial opens nothing', async () => {
      const r = new BrokerRotation([A, B]);
      const opened: BrokerTarget[] = [];
      let answer: (a: string[]) => void = () => undefined;
      const slow: ResolveHost = (host) =>
        host === 'a.example' ? new Promise((resolve) => (answer = resolve)) : Promise.resolve(['10.0.1.1']);
      r.dial(slow, (t) => opened.push(t));
      expect(opened).toEqual([]);
      answer(['10.0.0.1']);
      await new Promise((resolve) => setImmediate(resolve));
      expect(opened).toEqual([{ url: A, address: '10.0.0.1' }]);
      r.dial(slow, (t) => opened.push(t)); // within the round: no resolution
      expect(opened.at(-1)).toEqual({ url: B, address: '10.0.1.1' });

      r.dial(slow, (t) => opened.push(t)); // a new round, waiting on a.example
      r.cancel();
      answer(['10.0.0.1']);
      await new Promise((resolve) => setImmediate(resolve));
      expect(opened).toHaveLength(2);
    });

    it('starts over at the first URL after the list changed', async () => {
      const r = new BrokerRotation([A, B]);
      await r.newRound(table({ 'a.example': ['10.0.0.1'], 'b.example': ['10.0.1.1'] }));
      r.take();
      r.take();
      r.setUrls([C, B]);
      expect(r.urls).toEqual([C, B]);
      expect(r.current).toBeNull();
      const opened: BrokerTarget[] = [];
      r.dial(table({ 'b.example': ['10.0.1.1'] }), (t) => opened.push(t));
      await new Promise((resolve) => setImmediate(resolve));
      expect(opened).toEqual([{ url: C, address: null }]);
      expect(() => r.setUrls([])).toThrow('no broker URL');
    });
  });

  it('knows every broker address: IP literals, every resolution, kept when a later one fails', async () => {
    const r = new BrokerRotation([A, B, C, 'https://[2001:db8::5]:8443/']);
    expect(r.knownAddresses()).toEqual(['192.0.2.3', '2001:db8::5']);
    await r.newRound(table({ 'a.example': ['10.0.0.1', '10.0.0.2'], 'b.example': ['10.0.1.1'] }));
    await r.newRound(table({ 'a.example': ['10.0.0.3'] }));
    // a.example's new answer replaces its old one; b.example failed, so its last answer stays.
    expect(r.knownAddresses()).toEqual(['10.0.0.3', '10.0.1.1', '192.0.2.3', '2001:db8::5']);
  });
});
