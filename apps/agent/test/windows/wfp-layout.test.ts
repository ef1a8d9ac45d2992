import { buildWfpFilterSet, normalizeInbound } from '@trellis/firewall';
import {
  FWP_ACTION,
  FWP_DATA_TYPE,
  FWP_MATCH,
  FWPM_FILTER_FLAG,
  FWPM_SESSION_FLAG_DYNAMIC,
  RPC_C_AUTHN_WINNT,
  wfpNativeTypes,
} from '../../src/platform/wfp-native';
import { filterStruct, guidFields, guidText } from '../../src/platform/wfp-structs';

/**
 * The koffi declarations against the layouts of fwptypes.h/fwpmtypes.h on 64-bit Windows,
 * computed by hand (LLP64: UINT32 4 bytes, pointers 8). Every member is fixed-width or a
 * pointer, so koffi computes here on Linux x64 what MSVC does for Windows x64 and arm64.
 */
const { koffi, t } = wfpNativeTypes();
type CType = Parameters<typeof koffi.introspect>[0];

function layoutOf(type: CType): Record<string, number> {
  const info = koffi.introspect(type);
  const out: Record<string, number> = { size: info.size, align: info.alignment };
  for (const m of Object.values(info.members ?? {})) out[m.name] = m.offset;
  return out;
}

describe('WFP struct layouts (Windows x64)', () => {
  it.each([
    ['GUID', t.GUID, { size: 16, align: 4, Data1: 0, Data2: 4, Data3: 6, Data4: 8 }],
    ['FWPM_DISPLAY_DATA0', t.FWPM_DISPLAY_DATA0, { size: 16, align: 8, name: 0, description: 8 }],
    ['FWP_BYTE_BLOB', t.FWP_BYTE_BLOB, { size: 16, align: 8, size_: 0, data: 8 }],
    ['FWP_VALUE0', t.FWP_VALUE0, { size: 16, align: 8, type: 0, value: 8 }],
    ['FWP_CONDITION_VALUE0', t.FWP_CONDITION_VALUE0, { size: 16, align: 8, type: 0, value: 8 }],
    ['FWP_RANGE0', t.FWP_RANGE0, { size: 32, align: 8, valueLow: 0, valueHigh: 16 }],
    [
      'FWPM_FILTER_CONDITION0',
      t.FWPM_FILTER_CONDITION0,
      { size: 40, align: 8, fieldKey: 0, matchType: 16, conditionValue: 24 },
    ],
    ['FWPM_ACTION0', t.FWPM_ACTION0, { size: 20, align: 4, type: 0, filterType: 4 }],
    [
      'FWPM_SESSION0',
      t.FWPM_SESSION0,
      {
        size: 72,
        align: 8,
        sessionKey: 0,
        displayData: 16,
        flags: 32,
        txnWaitTimeoutInMSec: 36,
        processId: 40,
        sid: 48,
        username: 56,
        kernelMode: 64,
      },
    ],
    [
      'FWPM_PROVIDER0',
      t.FWPM_PROVIDER0,
      { size: 64, align: 8, providerKey: 0, displayData: 16, flags: 32, providerData: 40, serviceName: 56 },
    ],
    [
      'FWPM_SUBLAYER0',
      t.FWPM_SUBLAYER0,
      {
        size: 72,
        align: 8,
        subLayerKey: 0,
        displayData: 16,
        flags: 32,
        providerKey: 40,
        providerData: 48,
        weight: 64,
      },
    ],
    [
      'FWPM_FILTER0',
      t.FWPM_FILTER0,
      {
        size: 200,
        align: 8,
        filterKey: 0,
        displayData: 16,
        flags: 32,
        providerKey: 40,
        providerData: 48,
        layerKey: 64,
        subLayerKey: 80,
        weight: 96,
        numFilterConditions: 112,
        filterCondition: 120,
        // FWPM_ACTION0 is 4-aligned and 20 bytes: 128..148, then the 8-aligned context union.
        action: 128,
        context: 152,
        reserved: 168,
        filterId: 176,
        effectiveWeight: 184,
      },
    ],
    [
      'FWPM_FILTER_ENUM_TEMPLATE0',
      t.FWPM_FILTER_ENUM_TEMPLATE0,
      {
        size: 72,
        align: 8,
        providerKey: 0,
        layerKey: 8,
        enumType: 24,
        flags: 28,
        providerContextTemplate: 32,
        numFilterConditions: 40,
        filterCondition: 48,
        actionMask: 56,
        calloutKey: 64,
      },
    ],
  ] as const)('%s', (_name, type, expected) => {
    const actual = layoutOf(type);
    // FWP_BYTE_BLOB's `size` member collides with the struct size key above.
    if ('size_' in expected) {
      expect(koffi.offsetof(type, 'size')).toBe(0);
      const { size_: _, ...rest } = expected;
      expect({ ...actual, size: koffi.sizeof(type) }).toEqual({ ...rest, size: expected.size });
      return;
    }
    expect(actual).toEqual(expected);
  });

  it('constants are those of the headers', () => {
    expect(FWP_DATA_TYPE).toEqual({
      FWP_EMPTY: 0,
      FWP_UINT8: 1,
      FWP_UINT16: 2,
      FWP_UINT32: 3,
      FWP_UINT64: 4,
      FWP_RANGE_TYPE: 258,
    });
    expect(FWP_MATCH).toEqual({ FWP_MATCH_EQUAL: 0, FWP_MATCH_RANGE: 5 });
    expect(FWP_ACTION).toEqual({ FWP_ACTION_BLOCK: 0x1001, FWP_ACTION_PERMIT: 0x1002 });
    expect(FWPM_FILTER_FLAG.FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT).toBe(8);
    expect(FWPM_SESSION_FLAG_DYNAMIC).toBe(1);
    expect(RPC_C_AUTHN_WINNT).toBe(10);
  });

  it('a GUID struct encodes to the mixed-endian bytes Windows uses, and back', () => {
    const text = 'e1cd9fe7-f4b5-4273-96c0-592e487b8650';
    const buf = Buffer.alloc(16);
    koffi.encode(buf, t.GUID, guidFields(text));
    expect(buf.toString('hex')).toBe('e79fcde1b5f4734296c0592e487b8650');
    expect(guidText(koffi.decode(buf, t.GUID))).toBe(text);
    expect(() => guidFields('not-a-guid')).toThrow('not-a-guid is not a GUID');
  });

  it('every function prototype has the argument and result types of fwpmu.h and netioapi.h', () => {
    // A function object per prototype without the DLLs: koffi decodes any code pointer (here
    // libc's abs) as that prototype; it is only inspected, never called.
    const libc = koffi.load('libc.so.6');
    const code = libc.func('void *dlsym(void *handle, const char *name)')(null, 'abs');
    const shapes: Record<string, string> = {};
    const all = { ...t.prototypes, ConvertInterfaceAliasToLuid: t.convertAliasToLuid };
    for (const [name, proto] of Object.entries(all)) {
      const fn = koffi.decode(code, koffi.proto(proto.replace(`${name}(`, `ProtoWfp${name}(`)));
      const args = (fn.info.arguments as CType[]).map((a) => koffi.introspect(a).name);
      shapes[name] = `${koffi.introspect(fn.info.result).name} (${args.join(', ')})`;
    }
    const E = 'void *';
    expect(shapes).toEqual({
      FwpmEngineOpen0: `uint32_t (char16_t *, uint32_t, void *, FWPM_SESSION0 *, void **)`,
      FwpmEngineClose0: `uint32_t (${E})`,
      FwpmTransactionBegin0: `uint32_t (${E}, uint32_t)`,
      FwpmTransactionCommit0: `uint32_t (${E})`,
      FwpmTransactionAbort0: `uint32_t (${E})`,
      FwpmProviderAdd0: `uint32_t (${E}, FWPM_PROVIDER0 *, void *)`,
      FwpmSubLayerAdd0: `uint32_t (${E}, FWPM_SUBLAYER0 *, void *)`,
      FwpmFilterAdd0: `uint32_t (${E}, FWPM_FILTER0 *, void *, uint64_t *)`,
      FwpmFilterDeleteByKey0: `uint32_t (${E}, GUID *)`,
      FwpmSubLayerDeleteByKey0: `uint32_t (${E}, GUID *)`,
      FwpmProviderDeleteByKey0: `uint32_t (${E}, GUID *)`,
      FwpmFilterCreateEnumHandle0: `uint32_t (${E}, FWPM_FILTER_ENUM_TEMPLATE0 *, void **)`,
      FwpmFilterEnum0: `uint32_t (${E}, void *, uint32_t, void **, uint32_t *)`,
      FwpmFilterDestroyEnumHandle0: `uint32_t (${E}, void *)`,
      FwpmFreeMemory0: 'void (void **)',
      ConvertInterfaceAliasToLuid: 'uint32_t (char16_t *, uint64_t *)',
    });
  });
});

describe('a compiled filter as koffi lays it out', () => {
  const LUID = 1689399632855040n;
  const set = buildWfpFilterSet(
    normalizeInbound({
      interfaceName: 'trellis0',
      selfAddress: '100.64.0.1',
      peers: [{ address: '100.64.0.3', allow: [{ proto: 'tcp', ports: [[80, 90]] }] }],
    }),
    LUID.toString(),
  );
  const permit = set.filters.find((f) => f.name.endsWith('tcp 80-90'))!;

  it('encodes every member at its offset, conditions and values through their pointers', () => {
    const buf = Buffer.alloc(koffi.sizeof(t.FWPM_FILTER0));
    koffi.encode(buf, t.FWPM_FILTER0, filterStruct(permit));
    const at = (member: string) => koffi.offsetof(t.FWPM_FILTER0, member);
    expect(guidText(koffi.decode(buf, 0, t.GUID))).toBe(permit.key);
    expect(buf.readUInt32LE(at('flags'))).toBe(8);
    expect(guidText(koffi.decode(buf, at('layerKey'), t.GUID))).toBe('e1cd9fe7-f4b5-4273-96c0-592e487b8650');
    expect(guidText(koffi.decode(buf, at('subLayerKey'), t.GUID))).toBe(permit.subLayerKey);
    expect(buf.readUInt32LE(at('weight'))).toBe(FWP_DATA_TYPE.FWP_UINT8);
    expect(buf.readUInt8(at('weight') + 8)).toBe(10);
    expect(buf.readUInt32LE(at('action'))).toBe(FWP_ACTION.FWP_ACTION_PERMIT);
    const provider = koffi.decode(buf, at('providerKey'), 'void *');
    expect(guidText(koffi.decode(provider, t.GUID))).toBe(permit.providerKey);
    expect(koffi.decode(buf, at('displayData'), t.FWPM_DISPLAY_DATA0)).toEqual({
      name: 'Trellis permit 100.64.0.3 tcp 80-90',
      description: null,
    });

    const n = buf.readUInt32LE(at('numFilterConditions'));
    expect(n).toBe(5);
    const conditions = koffi.decode(buf, at('filterCondition'), 'void *');
    const size = koffi.sizeof(t.FWPM_FILTER_CONDITION0);
    const raw = Buffer.from(koffi.decode(conditions, koffi.array('uint8_t', n * size)) as Uint8Array);
    const condition = (i: number) => ({
      field: guidText(koffi.decode(raw, i * size, t.GUID)),
      match: raw.readUInt32LE(i * size + 16),
      type: raw.readUInt32LE(i * size + 24),
      pointer: koffi.decode(raw, i * size + 32, 'void *'),
      inline: raw.readUInt32LE(i * size + 32),
    });
    // The interface LUID: FWP_UINT64 by pointer.
    const luid = condition(0);
    expect([luid.field, luid.match, luid.type]).toEqual(['4cd62a49-59c3-4969-b7f3-bda5d32890a4', 0, 4]);
    expect(koffi.decode(luid.pointer, 'uint64_t')).toBe(Number(LUID));
    // Addresses in host order, inline.
    expect(condition(1).inline).toBe(0x64400001);
    expect(condition(2).inline).toBe(0x64400003);
    expect([condition(3).type, condition(3).inline & 0xff]).toEqual([FWP_DATA_TYPE.FWP_UINT8, 6]);
    // The port range: FWP_RANGE_TYPE pointing at an FWP_RANGE0 of two FWP_UINT16 values.
    const range = condition(4);
    expect([range.field, range.match, range.type]).toEqual([
      '0c1ba1af-5765-453f-af22-a8f791ac775b',
      FWP_MATCH.FWP_MATCH_RANGE,
      FWP_DATA_TYPE.FWP_RANGE_TYPE,
    ]);
    const low = koffi.decode(range.pointer, t.FWP_VALUE0);
    const high = koffi.decode(range.pointer, 16, t.FWP_VALUE0);
    expect([low.type, low.value.uint16, high.type, high.value.uint16]).toEqual([2, 80, 2, 90]);
  });

  it('the block filters carry only the interface condition; filter weights above 15 are refused', () => {
    const block = set.filters.find((f) => f.name === 'Trellis block inbound IPv6')!;
    const s = filterStruct(block);
    expect(s.numFilterConditions).toBe(1);
    expect(s.action.type).toBe(FWP_ACTION.FWP_ACTION_BLOCK);
    expect(guidText(s.layerKey)).toBe('a3b42c97-9f04-4672-b87e-cee9c483257f');
    expect(() => filterStruct({ ...block, weight: 16 })).toThrow('filter weight 16 is not in 0..15');
  });
});
