import {
  buildWfpFilterSet,
  type InboundPolicy,
  normalizeInbound,
  WFP_PROVIDER_KEY,
  WFP_SUBLAYER_KEY,
  WfpBackend,
} from '@trellis/firewall';
import { WfpNativeEngine } from '../../src/platform/wfp-engine-windows';
import { FwpError } from '../../src/platform/wfp-native';
import { type WfpNativeApi, WfpNativeError } from '../../src/platform/wfp-native-api';
import { expectGolden } from './golden';
import { FakeWfpNative, RPC_S_SERVER_UNAVAILABLE } from './wfp-native-fake';

/**
 * WfpNativeEngine under the real WfpBackend, against a recording stand-in for fwpuclnt.dll: the
 * golden files hold every native call with the struct it was given, so a wrong GUID, flag,
 * weight or condition value shows up as a diff.
 */
const BEFORE: InboundPolicy = {
  interfaceName: 'trellis0',
  selfAddress: '100.64.0.1',
  peers: [
    { address: '100.64.0.2', allow: [{}] },
    {
      address: '100.64.0.3',
      allow: [
        {
          proto: 'tcp',
          ports: [
            [22, 22],
            [80, 90],
          ],
        },
        { proto: 'udp', ports: [[53, 53]] },
        { proto: 'icmp' },
      ],
    },
  ],
};
const AFTER: InboundPolicy = {
  ...BEFORE,
  peers: [
    { address: '100.64.0.3', allow: [{ proto: 'tcp', ports: [[22, 22]] }] },
    { address: '100.64.0.4', allow: [{ proto: 'udp', ports: [[5000, 5010]] }] },
  ],
};
const LUID = '1689399632855040';

function setUp(native = new FakeWfpNative()) {
  let loads = 0;
  const engine = new WfpNativeEngine((): WfpNativeApi => {
    loads++;
    return native;
  });
  return { native, engine, backend: new WfpBackend({ engine }), loads: () => loads };
}

const log = (native: FakeWfpNative) => `${native.calls.join('\n')}\n`;

describe('WfpNativeEngine (recorded stand-in for fwpuclnt.dll)', () => {
  it('loads the native API on its first call, not when constructed', async () => {
    const { engine, loads } = setUp();
    expect(loads()).toBe(0);
    await expect(engine.beginTransaction()).rejects.toThrow('WFP engine session is not open');
    expect(loads()).toBe(1);
  });

  it('first apply: a persistent session, enumeration of both layers, then one transaction', async () => {
    const { native, backend } = setUp();
    expect(await backend.apply(BEFORE)).toEqual({ changed: true, mode: 'full', cut: 0 });
    expectGolden('wfp-native-first-apply.txt', log(native));
    // What the fake now holds is exactly the compiled set, in our sublayer.
    const set = buildWfpFilterSet(normalizeInbound(BEFORE), LUID);
    expect([...native.committed.filters.keys()].sort()).toEqual(set.filters.map((f) => f.key).sort());
    expect([...native.committed.providers]).toEqual([WFP_PROVIDER_KEY]);
    expect([...native.committed.subLayers]).toEqual([WFP_SUBLAYER_KEY]);
  });

  it('a change deletes and adds by key in one transaction', async () => {
    const { native, backend } = setUp();
    await backend.apply(BEFORE);
    native.calls.length = 0;
    expect(await backend.apply(AFTER)).toEqual({ changed: true, mode: 'incremental', cut: 0 });
    expectGolden('wfp-native-change.txt', log(native));
  });

  it('a restarted agent finds its filters by enumeration and changes nothing; remove empties WFP', async () => {
    const first = setUp();
    await first.backend.apply(BEFORE);
    const restarted = setUp(first.native);
    first.native.calls.length = 0;
    expect(await restarted.backend.apply(BEFORE)).toEqual({ changed: false, mode: 'none', cut: 0 });
    await restarted.backend.remove();
    expectGolden('wfp-native-restart-remove.txt', log(first.native));
    expect(first.native.committed).toEqual({
      providers: new Set(),
      subLayers: new Set(),
      filters: new Map(),
    });
  });

  it('a failing filter aborts the transaction and leaves the committed filters as they were', async () => {
    const { native, backend } = setUp();
    await backend.apply(BEFORE);
    const before = new Map(native.committed.filters);
    native.calls.length = 0;
    native.failNext = { fn: 'FwpmFilterAdd0', code: 0x80320023 };
    await expect(backend.apply(AFTER)).rejects.toThrow('FwpmFilterAdd0 failed: 0x80320023');
    expectGolden('wfp-native-abort.txt', log(native));
    expect(native.committed.filters).toEqual(before);
    // The next apply re-enumerates and succeeds.
    native.calls.length = 0;
    expect(await backend.apply(AFTER)).toMatchObject({ changed: true, mode: 'incremental' });
    expect(native.calls.slice(0, 2).map((c) => c.split(' ')[0])).toEqual([
      'ConvertInterfaceAliasToLuid',
      'FwpmFilterEnum0',
    ]);
  });

  it('provider or sublayer left from an earlier run (no filters) is not an error', async () => {
    const { native, backend } = setUp();
    native.committed.providers.add(WFP_PROVIDER_KEY);
    native.committed.subLayers.add(WFP_SUBLAYER_KEY);
    expect(await backend.apply(BEFORE)).toMatchObject({ changed: true, mode: 'full' });
    expect(native.committed.filters.size).toBeGreaterThan(0);
  });

  it('remove with nothing installed succeeds; other failures are thrown as they are', async () => {
    const { native, engine, backend } = setUp();
    await backend.remove();
    expect(native.calls.filter((c) => c.startsWith('FwpmTransactionCommit0'))).toHaveLength(1);
    native.failNext = { fn: 'FwpmProviderDeleteByKey0', code: 0x80320006 };
    await expect(engine.deleteProviderByKey(WFP_PROVIDER_KEY)).rejects.toMatchObject({ code: 0x80320006 });
    native.failNext = { fn: 'FwpmSubLayerAdd0', code: FwpError.PROVIDER_NOT_FOUND };
    await expect(
      engine.addSubLayer({ key: WFP_SUBLAYER_KEY, providerKey: WFP_PROVIDER_KEY, name: 'x', weight: 1 }),
    ).rejects.toMatchObject({ code: FwpError.PROVIDER_NOT_FOUND });
  });

  it('resolves the interface by alias and reopening a session closes the old one', async () => {
    const { native, engine } = setUp();
    expect(await engine.interfaceLuid('trellis0')).toBe(BigInt(LUID));
    await expect(engine.interfaceLuid('absent')).rejects.toMatchObject({ code: 1168 });
    await engine.openSession({ dynamic: true });
    await engine.openSession({ dynamic: false });
    await engine.close();
    await engine.close();
    expect(native.calls.slice(2).map((c) => c.replace(/ \{.*$/, ''))).toEqual([
      'FwpmEngineOpen0',
      'FwpmEngineClose0 engine=1',
      'FwpmEngineOpen0',
      'FwpmEngineClose0 engine=2',
    ]);
    expect(native.calls[2]).toContain('"flags":1');
    expect(native.calls[4]).toContain('"flags":0');
  });

  it('a lost session is told by its codes only: the RPC connection or the session gone', () => {
    const { engine } = setUp();
    const lost = (code: number) => engine.isSessionLost(new WfpNativeError('FwpmTransactionBegin0', code));
    // ERROR_INVALID_HANDLE, RPC_S_SERVER_UNAVAILABLE (Win32, HRESULT), RPC_E_DISCONNECTED, FWP_E_SESSION_ABORTED
    for (const code of [6, 1722, 0x800706ba, 0x80010108, 0x80320010]) expect(lost(code)).toBe(true);
    // Access denied, FWP_E_* of a wrong call (not found, exists, wrong session, aborted transaction), a missing adapter
    for (const code of [5, 0x80320003, 0x80320009, 0x8032000c, 0x8032000f, 0x80320023, 1168]) {
      expect(lost(code)).toBe(false);
    }
    expect(engine.isSessionLost(Object.assign(new Error('x'), { code: 6 }))).toBe(false);
    expect(engine.isSessionLost(undefined)).toBe(false);
  });

  it('after the Base Filtering Engine restarts, the next apply opens a new session and adds everything', async () => {
    const { native, backend } = setUp();
    await backend.apply(BEFORE);
    native.restartBfe();
    await expect(backend.apply(AFTER)).rejects.toMatchObject({ code: RPC_S_SERVER_UNAVAILABLE });
    native.calls.length = 0;
    expect(await backend.apply(AFTER)).toEqual({ changed: true, mode: 'full', cut: 0 });
    const set = buildWfpFilterSet(normalizeInbound(AFTER), LUID);
    expect(native.calls.map((c) => c.replace(/ [{"].*$/, ''))).toEqual([
      'ConvertInterfaceAliasToLuid',
      'FwpmEngineClose0 engine=1', // fails (the session is gone); not in the way of a new one
      'FwpmEngineOpen0',
      'FwpmFilterEnum0 engine=2',
      'FwpmFilterEnum0 engine=2',
      'FwpmTransactionBegin0 engine=2',
      'FwpmProviderAdd0 engine=2',
      'FwpmSubLayerAdd0 engine=2',
      ...set.filters.map(() => 'FwpmFilterAdd0 engine=2'),
      'FwpmTransactionCommit0 engine=2',
    ]);
    expect([...native.committed.filters.keys()].sort()).toEqual(set.filters.map((f) => f.key).sort());
    expect([...native.committed.providers]).toEqual([WFP_PROVIDER_KEY]);
  });
});
