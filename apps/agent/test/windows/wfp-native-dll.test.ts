import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WFP_PROVIDER_KEY, WFP_SUBLAYER_KEY, WfpBackend } from '@trellis/firewall';
import { WfpNativeEngine } from '../../src/platform/wfp-engine-windows';
import { FwpError, type WfpFunction, wfpNativeTypes } from '../../src/platform/wfp-native';
import { bindWfpNative, ENUM_PAGE, type NativeWfp } from '../../src/platform/wfp-native-api';
import { guidFields, layerEnumTemplate } from '../../src/platform/wfp-structs';

/**
 * The real koffi path: the prototypes of wfp-native.ts bound to a C stand-in for fwpuclnt.dll
 * (wfp-fake-fwpuclnt.c, compiled here with the machine's cc), so session, filter, condition and
 * range structs, out-parameters and the enumeration's pages cross a real FFI boundary.
 */
const { koffi, t } = wfpNativeTypes();
const dir = mkdtempSync(join(tmpdir(), 'trellis-wfp-'));
const libPath = join(dir, 'libfwpuclnt-fake.so');
execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', libPath, join(__dirname, 'wfp-fake-fwpuclnt.c')]);
const lib = koffi.load(libPath);
const native = {} as NativeWfp;
for (const name of Object.keys(t.prototypes) as WfpFunction[]) native[name] = lib.func(t.prototypes[name]);
const api = bindWfpNative(native, lib.func(t.convertAliasToLuid));
const probe = <T>(name: string, result = 'uint32_t'): T => lib.func(`${result} ${name}(void)`)() as T;
const setEnum = lib.func('void fake_set_enum(int total, const GUID *sublayer)');
const V4 = 'e1cd9fe7-f4b5-4273-96c0-592e487b8650';

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('WFP bindings through koffi (C stand-in for fwpuclnt.dll)', () => {
  it('opens a persistent session with WinNT authentication, through the engine handle out-parameter', async () => {
    const engine = new WfpNativeEngine(() => api);
    await engine.openSession({ dynamic: false });
    expect(probe<number>('fake_session_flags')).toBe(0);
    expect(probe<number>('fake_auth_service')).toBe(10);
    await engine.openSession({ dynamic: true });
    expect(probe<number>('fake_session_flags')).toBe(1);
    await engine.close();
  });

  it('enumerates page by page, keeps only its sublayer, and hands every page and handle back', async () => {
    const engine = new WfpNativeEngine(() => api);
    await engine.openSession({ dynamic: false });
    // Two full pages and a partial one per layer; the even-numbered filters are ours.
    const total = 2 * ENUM_PAGE + 5;
    setEnum(total, guidFields(WFP_SUBLAYER_KEY));
    const destroyed = probe<number>('fake_destroyed_handles', 'int');
    const calls = probe<number>('fake_enum_calls', 'int');
    const keys = await engine.filterKeys(WFP_SUBLAYER_KEY);
    const ours = Array.from({ length: total }, (_, i) => i)
      .filter((i) => i % 2 === 0)
      .map((i) => `${(i + 1).toString(16).padStart(8, '0')}-0000-0000-0000-000000000000`);
    expect(keys).toEqual(ours);
    expect(probe<number>('fake_enum_calls', 'int') - calls).toBe(2 * 3);
    expect(probe<number>('fake_destroyed_handles', 'int') - destroyed).toBe(2);
    expect(probe<number>('fake_outstanding_pages', 'int')).toBe(0);
    expect(probe<number>('fake_template_layer').toString(16)).toBe('a3b42c97');
    expect(probe<number>('fake_template_mask')).toBe(0xffffffff);
  });

  it('an exact multiple of the page size ends on an empty page', () => {
    const engine = api.engineOpen({ ...sessionOf(false) });
    setEnum(ENUM_PAGE, guidFields(WFP_SUBLAYER_KEY));
    const calls = probe<number>('fake_enum_calls', 'int');
    expect(api.filterEnum(engine, layerEnumTemplate(V4))).toHaveLength(ENUM_PAGE);
    expect(probe<number>('fake_enum_calls', 'int') - calls).toBe(2);
    expect(probe<number>('fake_outstanding_pages', 'int')).toBe(0);
  });

  it('a whole apply through WfpBackend: provider, sublayer, and filters with pointer-held values', async () => {
    setEnum(0, guidFields(WFP_SUBLAYER_KEY));
    const backend = new WfpBackend({ engine: new WfpNativeEngine(() => api) });
    const policy = {
      interfaceName: 'trellis0',
      selfAddress: '100.64.0.1',
      peers: [
        {
          address: '100.64.0.3',
          allow: [{ proto: 'tcp' as const, ports: [[8000, 8010]] as [number, number][] }],
        },
      ],
    };
    expect(await backend.apply(policy)).toEqual({ changed: true, mode: 'full', cut: 0 });
    expect(probe<number>('fake_provider_key').toString(16)).toBe(WFP_PROVIDER_KEY.slice(0, 8));
    expect(probe<number>('fake_sublayer').toString(16)).toBe(WFP_PROVIDER_KEY.slice(0, 8));
    expect(probe<number>('fake_sublayer_weight')).toBe(0xffff);
    // The last filter added is the IPv6 block; the LUID came from ConvertInterfaceAliasToLuid.
    expect(probe<string>('fake_filter_name', 'const char *')).toBe('Trellis block inbound IPv6');
    expect(probe<number>('fake_filter_action')).toBe(0x1001);
    expect(probe<number>('fake_filter_flags')).toBe(8);
    expect(probe<number>('fake_filter_weight')).toBe((1 << 8) | 1);
    expect(probe<number>('fake_filter_conditions')).toBe(1);
    expect(probe<bigint | number>('fake_luid_condition', 'uint64_t')).toBe(0x6000001000000);
    // The permit carried the port range by pointer to an FWP_RANGE0.
    expect(probe<number>('fake_range')).toBe((8000 << 16) | 8010);
  });

  it('result codes come through as WfpNativeError; the engine tolerates the ones meaning done', async () => {
    const engine = new WfpNativeEngine(() => api);
    await engine.openSession({ dynamic: false });
    await engine.deleteSubLayerByKey(WFP_SUBLAYER_KEY);
    expect(probe<number>('fake_deleted_key').toString(16)).toBe(WFP_SUBLAYER_KEY.slice(0, 8));
    const handle = api.engineOpen(sessionOf(false));
    expect(() => api.subLayerDeleteByKey(handle, guidFields(WFP_SUBLAYER_KEY))).toThrow(
      expect.objectContaining({ fn: 'FwpmSubLayerDeleteByKey0', code: FwpError.SUBLAYER_NOT_FOUND }),
    );
    await expect(engine.interfaceLuid('absent')).rejects.toMatchObject({
      fn: 'ConvertInterfaceAliasToLuid',
      code: 1168,
    });
    expect(await engine.interfaceLuid('trellis0')).toBe(0x6000001000000n);
  });
});

function sessionOf(dynamic: boolean) {
  return {
    sessionKey: guidFields('00000000-0000-0000-0000-000000000000'),
    displayData: { name: 'test', description: null },
    flags: dynamic ? 1 : 0,
    txnWaitTimeoutInMSec: 0,
    processId: 0,
    sid: null,
    username: null,
    kernelMode: 0,
  };
}
