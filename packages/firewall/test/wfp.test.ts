import { buildWfpFilterSet, normalizeInbound, uuidV5, WfpBackend, type WfpEngine } from '../src';
import { AFTER, BEFORE } from './support/fixtures';
import { expectGolden } from './support/golden';

const LUID = '1689399632855040';

/** What the engine throws on a session the Base Filtering Engine no longer knows. */
class SessionLost extends Error {}

/** An engine that records its calls and keeps the filters a committed transaction leaves. */
class RecordingEngine implements WfpEngine {
  readonly calls: string[] = [];
  filters = new Map<string, string>();
  private pending: Map<string, string> | undefined;
  failOnAdd = false;
  /** Set by restartBfe(): every call on the old session fails until a new one is opened. */
  private lost = false;

  /** The Base Filtering Engine restarts: the session is gone, and the non-persistent filters with it. */
  restartBfe() {
    this.lost = true;
    this.filters = new Map();
    this.pending = undefined;
  }
  isSessionLost(err: unknown) {
    return err instanceof SessionLost;
  }
  private live() {
    if (this.lost) throw new SessionLost('RPC_S_SERVER_UNAVAILABLE');
  }

  async openSession(o: { dynamic: boolean }) {
    this.calls.push(`openSession dynamic=${o.dynamic}`);
    this.lost = false;
  }
  async filterKeys(subLayer: string) {
    this.calls.push(`filterKeys ${subLayer}`);
    this.live();
    return [...this.filters.keys()];
  }
  async beginTransaction() {
    this.calls.push('beginTransaction');
    this.live();
    this.pending = new Map(this.filters);
  }
  async addProvider(p: { key: string; name: string }) {
    this.calls.push(`addProvider ${p.key} ${p.name}`);
  }
  async addSubLayer(s: { key: string; weight: number }) {
    this.calls.push(`addSubLayer ${s.key} weight=${s.weight}`);
  }
  async addFilter(f: { key: string; name: string }) {
    if (this.failOnAdd) throw new Error('FWP_E_INVALID_CONDITION');
    this.calls.push(`addFilter ${f.key} ${f.name}`);
    this.pending!.set(f.key, f.name);
  }
  async deleteFilterByKey(key: string) {
    this.calls.push(`deleteFilterByKey ${key} ${this.pending!.get(key)}`);
    this.pending!.delete(key);
  }
  async deleteSubLayerByKey(key: string) {
    this.calls.push(`deleteSubLayerByKey ${key}`);
  }
  async deleteProviderByKey(key: string) {
    this.calls.push(`deleteProviderByKey ${key}`);
  }
  async commitTransaction() {
    this.calls.push('commitTransaction');
    this.filters = this.pending!;
  }
  async abortTransaction() {
    this.calls.push('abortTransaction');
    this.live();
    this.pending = undefined;
  }
}

const WIN = { ...BEFORE, interfaceName: 'Trellis' };
const WIN_AFTER = { ...AFTER, interfaceName: 'Trellis' };

describe('WfpBackend (golden files; WFP itself cannot run here)', () => {
  it('models the filter set: hard permits per peer, protocol and port span, lower-weight blocks for v4 and v6', () => {
    const set = buildWfpFilterSet(normalizeInbound(WIN), LUID);
    expectGolden('wfp-filters.json.golden', `${JSON.stringify(set, null, 2)}\n`);
    expect(new Set(set.filters.map((f) => f.key)).size).toBe(set.filters.length);
  });

  it('derives RFC 4122 v5 keys (checked against a known value)', () => {
    // Python: uuid.uuid5(uuid.NAMESPACE_DNS, 'python.org')
    expect(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org')).toBe(
      '886313e1-3b8a-5372-9b90-0c9aee199e5d',
    );
  });

  it('first apply adds provider, sublayer and filters in one transaction; the same policy again calls nothing', async () => {
    const engine = new RecordingEngine();
    const wfp = new WfpBackend({ engine, interfaceLuid: BigInt(LUID) });
    expect(await wfp.apply(WIN)).toEqual({ changed: true, mode: 'full', cut: 0 });
    const first = engine.calls.length;
    expect(await wfp.apply(WIN)).toEqual({ changed: false, mode: 'none', cut: 0 });
    expect(engine.calls.length).toBe(first);
    expectGolden('wfp-first-apply.calls', `${engine.calls.join('\n')}\n`);
  });

  it('a change deletes the filters that went and adds the new ones, in one transaction', async () => {
    const engine = new RecordingEngine();
    const wfp = new WfpBackend({ engine, interfaceLuid: LUID });
    await wfp.apply(WIN);
    engine.calls.length = 0;
    expect(await wfp.apply(WIN_AFTER)).toEqual({ changed: true, mode: 'incremental', cut: 0 });
    expectGolden('wfp-change.calls', `${engine.calls.join('\n')}\n`);
  });

  it('a new instance (restart) diffs against the filters it finds; identical means no transaction', async () => {
    const engine = new RecordingEngine();
    await new WfpBackend({ engine, interfaceLuid: LUID }).apply(WIN);
    engine.calls.length = 0;
    expect(await new WfpBackend({ engine, interfaceLuid: LUID }).apply(WIN)).toMatchObject({ mode: 'none' });
    expect(engine.calls).toEqual([
      'openSession dynamic=false',
      'filterKeys 3e4e1bb8-662f-4b6a-b59e-f80437860e7b',
    ]);
  });

  it('a failing transaction is aborted and rethrown; remove takes away filters, sublayer and provider', async () => {
    const engine = new RecordingEngine();
    const wfp = new WfpBackend({ engine, interfaceLuid: LUID });
    await wfp.apply(WIN);
    engine.failOnAdd = true;
    await expect(wfp.apply(WIN_AFTER)).rejects.toThrow('FWP_E_INVALID_CONDITION');
    expect(engine.calls.at(-1)).toBe('abortTransaction');
    engine.failOnAdd = false;
    // Not a lost session: the next call keeps it and re-enumerates only.
    expect(engine.isSessionLost(new Error('FWP_E_INVALID_CONDITION'))).toBe(false);
    await wfp.remove();
    expect(engine.filters.size).toBe(0);
    expect(engine.calls.slice(-3)).toEqual([
      'deleteSubLayerByKey 3e4e1bb8-662f-4b6a-b59e-f80437860e7b',
      'deleteProviderByKey b8a19e4f-2122-4284-9d73-d4f7fa97eb75',
      'commitTransaction',
    ]);
    expect(await wfp.counters()).toEqual({ dropped: { packets: 0, bytes: 0 } });
    expect(engine.calls.filter((c) => c.startsWith('openSession'))).toHaveLength(1);
  });

  it('a lost session (the Base Filtering Engine restarted) is reopened on the next apply, which adds everything again', async () => {
    const engine = new RecordingEngine();
    const wfp = new WfpBackend({ engine, interfaceLuid: LUID });
    await wfp.apply(WIN);
    const full = engine.calls.slice();
    engine.restartBfe();
    // The same policy makes no call, so the loss shows on the next change.
    await expect(wfp.apply(WIN)).resolves.toMatchObject({ mode: 'none' });
    await expect(wfp.apply(WIN_AFTER)).rejects.toThrow('RPC_S_SERVER_UNAVAILABLE');
    engine.calls.length = 0;
    expect(await wfp.apply(WIN)).toEqual({ changed: true, mode: 'full', cut: 0 });
    expect(engine.calls).toEqual(full);
    expect([...engine.filters.keys()].sort()).toEqual(
      buildWfpFilterSet(normalizeInbound(WIN), LUID)
        .filters.map((f) => f.key)
        .sort(),
    );
  });

  it('refuses a LUID that is not a uint64 and needs one from somewhere', async () => {
    expect(() => new WfpBackend({ engine: new RecordingEngine(), interfaceLuid: '-1' })).toThrow(/uint64/);
    expect(() => new WfpBackend({ engine: new RecordingEngine(), interfaceLuid: 2n ** 64n })).toThrow(
      /uint64/,
    );
    await expect(new WfpBackend({ engine: new RecordingEngine() }).apply(WIN)).rejects.toThrow(
      /interfaceLuid/,
    );
  });
});
