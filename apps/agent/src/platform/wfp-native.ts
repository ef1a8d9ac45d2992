import type { WfpField, WfpLayer } from '@trellis/firewall';
import type * as Koffi from 'koffi';
import { namedType } from '../util/koffi-types';

// The C side of the Windows Filtering Platform management API (fwpuclnt.dll, fwpmu.h and
// fwptypes.h) and ConvertInterfaceAliasToLuid (iphlpapi.dll) in koffi's terms. Windows is LLP64:
// every 32-bit member is declared uint32_t, never long, so koffi lays the structs out here on
// Linux x64 exactly as MSVC does on Windows x64 and arm64 (checked in wfp-layout.test.ts).

/** Layer keys (fwpmu.h) for the layers wfp-filters.ts uses. */
export const WFP_LAYER_GUIDS: Record<WfpLayer, string> = {
  FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4: 'e1cd9fe7-f4b5-4273-96c0-592e487b8650',
  FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6: 'a3b42c97-9f04-4672-b87e-cee9c483257f',
};

/** Condition field keys (fwpmu.h). ICMP_TYPE is, in the header too, the local port's key. */
export const WFP_FIELD_GUIDS: Record<WfpField, string> = {
  FWPM_CONDITION_IP_LOCAL_INTERFACE: '4cd62a49-59c3-4969-b7f3-bda5d32890a4',
  FWPM_CONDITION_IP_LOCAL_ADDRESS: 'd9ee00de-c1ef-4617-bfe3-ffd8f5a08957',
  FWPM_CONDITION_IP_REMOTE_ADDRESS: 'b235ae9a-1d64-49b8-a44c-5ff3d9095045',
  FWPM_CONDITION_IP_PROTOCOL: '3971ef2b-623e-4f9a-8cb1-6e79b806b9a7',
  FWPM_CONDITION_IP_LOCAL_PORT: '0c1ba1af-5765-453f-af22-a8f791ac775b',
  FWPM_CONDITION_ICMP_TYPE: '0c1ba1af-5765-453f-af22-a8f791ac775b',
};

/** FWP_DATA_TYPE values this code writes. */
export const FWP_DATA_TYPE = {
  FWP_EMPTY: 0,
  FWP_UINT8: 1,
  FWP_UINT16: 2,
  FWP_UINT32: 3,
  FWP_UINT64: 4,
  FWP_RANGE_TYPE: 0x102,
} as const;

export const FWP_MATCH = { FWP_MATCH_EQUAL: 0, FWP_MATCH_RANGE: 5 } as const;

const FWP_ACTION_FLAG_TERMINATING = 0x1000;
export const FWP_ACTION = {
  FWP_ACTION_BLOCK: 0x1 | FWP_ACTION_FLAG_TERMINATING,
  FWP_ACTION_PERMIT: 0x2 | FWP_ACTION_FLAG_TERMINATING,
} as const;

export const FWPM_FILTER_FLAG = { FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT: 0x8 } as const;
export const FWPM_SESSION_FLAG_DYNAMIC = 0x1;
/** The authentication service FwpmEngineOpen0 takes for a local engine. */
export const RPC_C_AUTHN_WINNT = 10;
/** FWP_FILTER_ENUM_TYPE: with no conditions in the template, every filter in the layer. */
export const FWP_FILTER_ENUM_OVERLAPPING = 1;
/** An enumeration template's actionMask that lets every action through. */
export const FWP_ACTION_MASK_ALL = 0xffffffff;

/** FWP_E_* results (winerror.h) the engine tells apart. */
export const FwpError = {
  FILTER_NOT_FOUND: 0x80320003,
  PROVIDER_NOT_FOUND: 0x80320005,
  SUBLAYER_NOT_FOUND: 0x80320007,
  ALREADY_EXISTS: 0x80320009,
} as const;

export type WfpFunction =
  | 'FwpmEngineOpen0'
  | 'FwpmEngineClose0'
  | 'FwpmTransactionBegin0'
  | 'FwpmTransactionCommit0'
  | 'FwpmTransactionAbort0'
  | 'FwpmProviderAdd0'
  | 'FwpmSubLayerAdd0'
  | 'FwpmFilterAdd0'
  | 'FwpmFilterDeleteByKey0'
  | 'FwpmSubLayerDeleteByKey0'
  | 'FwpmProviderDeleteByKey0'
  | 'FwpmFilterCreateEnumHandle0'
  | 'FwpmFilterEnum0'
  | 'FwpmFilterDestroyEnumHandle0'
  | 'FwpmFreeMemory0';

export interface WfpNativeTypes {
  GUID: Koffi.IKoffiCType;
  FWPM_DISPLAY_DATA0: Koffi.IKoffiCType;
  FWP_BYTE_BLOB: Koffi.IKoffiCType;
  FWP_VALUE0: Koffi.IKoffiCType;
  FWP_RANGE0: Koffi.IKoffiCType;
  FWP_CONDITION_VALUE0: Koffi.IKoffiCType;
  FWPM_FILTER_CONDITION0: Koffi.IKoffiCType;
  FWPM_ACTION0: Koffi.IKoffiCType;
  FWPM_SESSION0: Koffi.IKoffiCType;
  FWPM_PROVIDER0: Koffi.IKoffiCType;
  FWPM_SUBLAYER0: Koffi.IKoffiCType;
  FWPM_FILTER0: Koffi.IKoffiCType;
  FWPM_FILTER_ENUM_TEMPLATE0: Koffi.IKoffiCType;
  /** fwpuclnt.dll */
  prototypes: Record<WfpFunction, string>;
  /** iphlpapi.dll */
  convertAliasToLuid: string;
}

let types: { koffi: typeof Koffi; t: WfpNativeTypes } | null = null;

/** The declarations, built on first use so that Linux and macOS never load koffi for them. */
export function wfpNativeTypes(): { koffi: typeof Koffi; t: WfpNativeTypes } {
  if (types) return types;
  const koffi = require('koffi') as typeof Koffi;
  const named = (name: string, declare: () => Koffi.IKoffiCType) => namedType(koffi, name, declare);
  const GUID = named('GUID', () =>
    koffi.struct('GUID', {
      Data1: 'uint32_t',
      Data2: 'uint16_t',
      Data3: 'uint16_t',
      Data4: koffi.array('uint8_t', 8),
    }),
  );
  const guidPtr = koffi.pointer(GUID);
  const str = 'char16_t *';
  const FWPM_DISPLAY_DATA0 = named('FWPM_DISPLAY_DATA0', () =>
    koffi.struct('FWPM_DISPLAY_DATA0', { name: str, description: str }),
  );
  const FWP_BYTE_BLOB = named('FWP_BYTE_BLOB', () =>
    koffi.struct('FWP_BYTE_BLOB', { size: 'uint32_t', data: 'uint8_t *' }),
  );
  // The value unions hold 64-bit integers and everything wider by pointer, so they stay 8 bytes.
  const FWP_VALUE0 = named('FWP_VALUE0', () =>
    koffi.struct('FWP_VALUE0', {
      type: 'uint32_t',
      value: koffi.union('FWP_VALUE0_UNION', {
        uint8: 'uint8_t',
        uint16: 'uint16_t',
        uint32: 'uint32_t',
        uint64: 'uint64_t *',
        unicodeString: str,
        pointer: 'void *',
      }),
    }),
  );
  const FWP_RANGE0 = named('FWP_RANGE0', () =>
    koffi.struct('FWP_RANGE0', { valueLow: FWP_VALUE0, valueHigh: FWP_VALUE0 }),
  );
  const FWP_CONDITION_VALUE0 = named('FWP_CONDITION_VALUE0', () =>
    koffi.struct('FWP_CONDITION_VALUE0', {
      type: 'uint32_t',
      value: koffi.union('FWP_CONDITION_VALUE0_UNION', {
        uint8: 'uint8_t',
        uint16: 'uint16_t',
        uint32: 'uint32_t',
        uint64: 'uint64_t *',
        unicodeString: str,
        rangeValue: koffi.pointer(FWP_RANGE0),
        pointer: 'void *',
      }),
    }),
  );
  const FWPM_FILTER_CONDITION0 = named('FWPM_FILTER_CONDITION0', () =>
    koffi.struct('FWPM_FILTER_CONDITION0', {
      fieldKey: GUID,
      matchType: 'uint32_t',
      conditionValue: FWP_CONDITION_VALUE0,
    }),
  );
  // The action's union of filterType and calloutKey is one GUID either way.
  const FWPM_ACTION0 = named('FWPM_ACTION0', () =>
    koffi.struct('FWPM_ACTION0', { type: 'uint32_t', filterType: GUID }),
  );
  const FWPM_SESSION0 = named('FWPM_SESSION0', () =>
    koffi.struct('FWPM_SESSION0', {
      sessionKey: GUID,
      displayData: FWPM_DISPLAY_DATA0,
      flags: 'uint32_t',
      txnWaitTimeoutInMSec: 'uint32_t',
      processId: 'uint32_t',
      sid: 'void *',
      username: str,
      kernelMode: 'int32_t',
    }),
  );
  const FWPM_PROVIDER0 = named('FWPM_PROVIDER0', () =>
    koffi.struct('FWPM_PROVIDER0', {
      providerKey: GUID,
      displayData: FWPM_DISPLAY_DATA0,
      flags: 'uint32_t',
      providerData: FWP_BYTE_BLOB,
      serviceName: str,
    }),
  );
  const FWPM_SUBLAYER0 = named('FWPM_SUBLAYER0', () =>
    koffi.struct('FWPM_SUBLAYER0', {
      subLayerKey: GUID,
      displayData: FWPM_DISPLAY_DATA0,
      flags: 'uint32_t',
      providerKey: guidPtr,
      providerData: FWP_BYTE_BLOB,
      weight: 'uint16_t',
    }),
  );
  const FWPM_FILTER0 = named('FWPM_FILTER0', () =>
    koffi.struct('FWPM_FILTER0', {
      filterKey: GUID,
      displayData: FWPM_DISPLAY_DATA0,
      flags: 'uint32_t',
      providerKey: guidPtr,
      providerData: FWP_BYTE_BLOB,
      layerKey: GUID,
      subLayerKey: GUID,
      weight: FWP_VALUE0,
      numFilterConditions: 'uint32_t',
      filterCondition: koffi.pointer(FWPM_FILTER_CONDITION0),
      action: FWPM_ACTION0,
      context: koffi.union('FWPM_FILTER0_CONTEXT', { rawContext: 'uint64_t', providerContextKey: GUID }),
      reserved: guidPtr,
      filterId: 'uint64_t',
      effectiveWeight: FWP_VALUE0,
    }),
  );
  const FWPM_FILTER_ENUM_TEMPLATE0 = named('FWPM_FILTER_ENUM_TEMPLATE0', () =>
    koffi.struct('FWPM_FILTER_ENUM_TEMPLATE0', {
      providerKey: guidPtr,
      layerKey: GUID,
      enumType: 'uint32_t',
      flags: 'uint32_t',
      providerContextTemplate: 'void *',
      numFilterConditions: 'uint32_t',
      filterCondition: koffi.pointer(FWPM_FILTER_CONDITION0),
      actionMask: 'uint32_t',
      calloutKey: guidPtr,
    }),
  );
  // DWORD results; HANDLEs and security descriptors are plain pointers (always NULL for the latter).
  const E = 'void *engineHandle';
  const prototypes: Record<WfpFunction, string> = {
    FwpmEngineOpen0: `uint32_t __stdcall FwpmEngineOpen0(const char16_t *serverName, uint32_t authnService, void *authIdentity, const FWPM_SESSION0 *session, _Out_ void **engineHandle)`,
    FwpmEngineClose0: `uint32_t __stdcall FwpmEngineClose0(${E})`,
    FwpmTransactionBegin0: `uint32_t __stdcall FwpmTransactionBegin0(${E}, uint32_t flags)`,
    FwpmTransactionCommit0: `uint32_t __stdcall FwpmTransactionCommit0(${E})`,
    FwpmTransactionAbort0: `uint32_t __stdcall FwpmTransactionAbort0(${E})`,
    FwpmProviderAdd0: `uint32_t __stdcall FwpmProviderAdd0(${E}, const FWPM_PROVIDER0 *provider, void *sd)`,
    FwpmSubLayerAdd0: `uint32_t __stdcall FwpmSubLayerAdd0(${E}, const FWPM_SUBLAYER0 *subLayer, void *sd)`,
    FwpmFilterAdd0: `uint32_t __stdcall FwpmFilterAdd0(${E}, const FWPM_FILTER0 *filter, void *sd, _Out_ uint64_t *id)`,
    FwpmFilterDeleteByKey0: `uint32_t __stdcall FwpmFilterDeleteByKey0(${E}, const GUID *key)`,
    FwpmSubLayerDeleteByKey0: `uint32_t __stdcall FwpmSubLayerDeleteByKey0(${E}, const GUID *key)`,
    FwpmProviderDeleteByKey0: `uint32_t __stdcall FwpmProviderDeleteByKey0(${E}, const GUID *key)`,
    FwpmFilterCreateEnumHandle0: `uint32_t __stdcall FwpmFilterCreateEnumHandle0(${E}, const FWPM_FILTER_ENUM_TEMPLATE0 *enumTemplate, _Out_ void **enumHandle)`,
    // entries is FWPM_FILTER0 ***: the array of filter pointers comes back as one opaque pointer.
    FwpmFilterEnum0: `uint32_t __stdcall FwpmFilterEnum0(${E}, void *enumHandle, uint32_t numEntriesRequested, _Out_ void **entries, _Out_ uint32_t *numEntriesReturned)`,
    FwpmFilterDestroyEnumHandle0: `uint32_t __stdcall FwpmFilterDestroyEnumHandle0(${E}, void *enumHandle)`,
    FwpmFreeMemory0: 'void __stdcall FwpmFreeMemory0(_Inout_ void **p)',
  };
  const convertAliasToLuid =
    'uint32_t __stdcall ConvertInterfaceAliasToLuid(const char16_t *InterfaceAlias, _Out_ uint64_t *InterfaceLuid)';
  types = {
    koffi,
    t: {
      GUID,
      FWPM_DISPLAY_DATA0,
      FWP_BYTE_BLOB,
      FWP_VALUE0,
      FWP_RANGE0,
      FWP_CONDITION_VALUE0,
      FWPM_FILTER_CONDITION0,
      FWPM_ACTION0,
      FWPM_SESSION0,
      FWPM_PROVIDER0,
      FWPM_SUBLAYER0,
      FWPM_FILTER0,
      FWPM_FILTER_ENUM_TEMPLATE0,
      prototypes,
      convertAliasToLuid,
    },
  };
  return types;
}
