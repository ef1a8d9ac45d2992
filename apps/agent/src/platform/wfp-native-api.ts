import { RPC_C_AUTHN_WINNT, type WfpFunction, wfpNativeTypes } from './wfp-native';
import {
  type EnumTemplateStruct,
  type FilterStruct,
  type GuidFields,
  guidText,
  type ProviderStruct,
  type SessionStruct,
  type SubLayerStruct,
} from './wfp-structs';

/** An opaque engine HANDLE from FwpmEngineOpen0. */
export type EngineHandle = { readonly __wfpEngine: unique symbol };

export class WfpNativeError extends Error {
  constructor(
    readonly fn: string,
    readonly code: number,
  ) {
    super(`${fn} failed: 0x${code.toString(16).padStart(8, '0')}`);
  }
}

/** What enumeration reads of each FWPM_FILTER0. */
export interface EnumeratedFilter {
  filterKey: string;
  subLayerKey: string;
}

/**
 * The fwpuclnt.dll and iphlpapi.dll calls with C conventions turned into JS ones: a nonzero
 * result throws WfpNativeError. Struct arguments are the objects of wfp-structs.ts. Injectable,
 * so the engine is tested against a recording fake.
 */
export interface WfpNativeApi {
  engineOpen(session: SessionStruct): EngineHandle;
  engineClose(engine: EngineHandle): void;
  transactionBegin(engine: EngineHandle): void;
  transactionCommit(engine: EngineHandle): void;
  transactionAbort(engine: EngineHandle): void;
  providerAdd(engine: EngineHandle, provider: ProviderStruct): void;
  subLayerAdd(engine: EngineHandle, subLayer: SubLayerStruct): void;
  filterAdd(engine: EngineHandle, filter: FilterStruct): void;
  filterDeleteByKey(engine: EngineHandle, key: GuidFields): void;
  subLayerDeleteByKey(engine: EngineHandle, key: GuidFields): void;
  providerDeleteByKey(engine: EngineHandle, key: GuidFields): void;
  /** Create an enum handle, read it page by page (each page freed), destroy it. */
  filterEnum(engine: EngineHandle, template: EnumTemplateStruct): EnumeratedFilter[];
  interfaceAliasToLuid(alias: string): bigint;
}

/** One bound C function. */
export type NativeCall = (...args: unknown[]) => unknown;
export type NativeWfp = Record<WfpFunction, NativeCall>;

/** Filters per FwpmFilterEnum0 call. */
export const ENUM_PAGE = 64;

/** Loads fwpuclnt.dll and iphlpapi.dll through koffi (Windows only) and binds them. */
export function loadWfpNative(): WfpNativeApi {
  const { koffi, t } = wfpNativeTypes();
  const fwp = koffi.load('fwpuclnt.dll');
  const native = {} as NativeWfp;
  for (const name of Object.keys(t.prototypes) as WfpFunction[]) native[name] = fwp.func(t.prototypes[name]);
  const aliasToLuid = koffi.load('iphlpapi.dll').func(t.convertAliasToLuid);
  return bindWfpNative(native, aliasToLuid);
}

/**
 * Binds the C functions. Calls run synchronously on the JS thread: each is one short RPC to
 * the Base Filtering Engine, and a transaction belongs to the session that began it.
 */
export function bindWfpNative(native: NativeWfp, aliasToLuid: NativeCall): WfpNativeApi {
  const call = (name: WfpFunction, ...args: unknown[]): void => {
    const code = Number(native[name](...args));
    if (code !== 0) throw new WfpNativeError(name, code >>> 0);
  };
  return {
    engineOpen(session) {
      const out: unknown[] = [null];
      call('FwpmEngineOpen0', null, RPC_C_AUTHN_WINNT, null, session, out);
      return out[0] as EngineHandle;
    },
    engineClose: (engine) => call('FwpmEngineClose0', engine),
    transactionBegin: (engine) => call('FwpmTransactionBegin0', engine, 0),
    transactionCommit: (engine) => call('FwpmTransactionCommit0', engine),
    transactionAbort: (engine) => call('FwpmTransactionAbort0', engine),
    providerAdd: (engine, provider) => call('FwpmProviderAdd0', engine, provider, null),
    subLayerAdd: (engine, subLayer) => call('FwpmSubLayerAdd0', engine, subLayer, null),
    filterAdd: (engine, filter) => call('FwpmFilterAdd0', engine, filter, null, [0n]),
    filterDeleteByKey: (engine, key) => call('FwpmFilterDeleteByKey0', engine, key),
    subLayerDeleteByKey: (engine, key) => call('FwpmSubLayerDeleteByKey0', engine, key),
    providerDeleteByKey: (engine, key) => call('FwpmProviderDeleteByKey0', engine, key),
    filterEnum(engine, template) {
      const handle: unknown[] = [null];
      call('FwpmFilterCreateEnumHandle0', engine, template, handle);
      try {
        const found: EnumeratedFilter[] = [];
        for (;;) {
          const page = readPage(native, call, engine, handle[0]);
          found.push(...page);
          if (page.length < ENUM_PAGE) return found;
        }
      } finally {
        call('FwpmFilterDestroyEnumHandle0', engine, handle[0]);
      }
    },
    interfaceAliasToLuid(alias) {
      const out: unknown[] = [0n];
      const code = Number(aliasToLuid(alias, out));
      if (code !== 0) throw new WfpNativeError('ConvertInterfaceAliasToLuid', code >>> 0);
      return BigInt(out[0] as number | bigint);
    },
  };
}

/** One FwpmFilterEnum0 page: the filters' keys copied out, then the page handed back to WFP. */
function readPage(
  native: NativeWfp,
  call: (name: WfpFunction, ...args: unknown[]) => void,
  engine: EngineHandle,
  enumHandle: unknown,
): EnumeratedFilter[] {
  const { koffi, t } = wfpNativeTypes();
  const entries: unknown[] = [null];
  const count = new Uint32Array(1);
  call('FwpmFilterEnum0', engine, enumHandle, ENUM_PAGE, entries, count);
  if (entries[0] === null) return [];
  try {
    const n = count[0] ?? 0;
    const filters = n === 0 ? [] : (koffi.decode(entries[0], 'void *', n) as unknown[]);
    const subLayerAt = koffi.offsetof(t.FWPM_FILTER0, 'subLayerKey');
    return filters.map((filter) => ({
      filterKey: guidText(koffi.decode(filter, 0, t.GUID)),
      subLayerKey: guidText(koffi.decode(filter, subLayerAt, t.GUID)),
    }));
  } finally {
    native.FwpmFreeMemory0(entries);
  }
}
