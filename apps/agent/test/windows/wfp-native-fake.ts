import { FwpError } from '../../src/platform/wfp-native';
import type { EngineHandle, EnumeratedFilter, WfpNativeApi } from '../../src/platform/wfp-native-api';
import { WfpNativeError } from '../../src/platform/wfp-native-api';
import { type GuidFields, guidText } from '../../src/platform/wfp-structs';

/** What a call on a session of a restarted Base Filtering Engine returns (as an HRESULT). */
export const RPC_S_SERVER_UNAVAILABLE = 0x800706ba;

const isGuid = (v: unknown): v is GuidFields =>
  typeof v === 'object' && v !== null && 'Data1' in v && 'Data4' in v && Object.keys(v).length === 4;

/** A struct argument as one line: GUIDs as text, 64-bit integers in decimal. */
export function render(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (isGuid(v)) return guidText(v);
    if (typeof v === 'bigint') return v.toString();
    return v;
  });
}

interface Objects {
  providers: Set<string>;
  subLayers: Set<string>;
  /** filter key to its layer and sublayer */
  filters: Map<string, { layer: string; subLayer: string }>;
}

const copy = (o: Objects): Objects => ({
  providers: new Set(o.providers),
  subLayers: new Set(o.subLayers),
  filters: new Map(o.filters),
});

/**
 * The Base Filtering Engine as far as the engine can tell: objects that outlive a non-dynamic
 * session, transactions that commit or vanish, FWP_E_* results for duplicates and misses.
 * Every call is recorded as the native API received it.
 */
export class FakeWfpNative implements WfpNativeApi {
  readonly calls: string[] = [];
  committed: Objects = { providers: new Set(), subLayers: new Set(), filters: new Map() };
  private pending: Objects | undefined;
  private nextHandle = 1;
  private open = new Set<number>();
  /** Handles of sessions a restarted Base Filtering Engine no longer knows. */
  private lost = new Set<number>();
  /** The next call to this function returns this result. */
  failNext: { fn: string; code: number } | undefined;
  luids = new Map<string, bigint>([['trellis0', 1689399632855040n]]);

  private record(fn: string, engine: EngineHandle | null, ...args: unknown[]): void {
    const h = engine === null ? '' : ` engine=${String(engine)}`;
    this.calls.push(`${fn}${h}${args.map((a) => ` ${render(a)}`).join('')}`);
    if (engine !== null && this.lost.has(engine as unknown as number)) {
      throw new WfpNativeError(fn, RPC_S_SERVER_UNAVAILABLE);
    }
    if (engine !== null && !this.open.has(engine as unknown as number)) {
      throw new Error(`${fn} on a closed engine handle`);
    }
    if (this.failNext?.fn === fn) {
      const { code } = this.failNext;
      this.failNext = undefined;
      throw new WfpNativeError(fn, code);
    }
  }

  /** The service restarts: open sessions are gone, and so is everything (nothing we add is persistent). */
  restartBfe(): void {
    for (const h of this.open) this.lost.add(h);
    this.open.clear();
    this.committed = { providers: new Set(), subLayers: new Set(), filters: new Map() };
    this.pending = undefined;
  }

  private state(): Objects {
    // Outside a transaction each call is its own (WFP's implicit transaction).
    return this.pending ?? this.committed;
  }

  engineOpen(session: Parameters<WfpNativeApi['engineOpen']>[0]): EngineHandle {
    this.record('FwpmEngineOpen0', null, session);
    const handle = this.nextHandle++;
    this.open.add(handle);
    return handle as unknown as EngineHandle;
  }
  engineClose(engine: EngineHandle): void {
    this.record('FwpmEngineClose0', engine);
    this.open.delete(engine as unknown as number);
    this.pending = undefined;
  }
  transactionBegin(engine: EngineHandle): void {
    this.record('FwpmTransactionBegin0', engine);
    this.pending = copy(this.committed);
  }
  transactionCommit(engine: EngineHandle): void {
    this.record('FwpmTransactionCommit0', engine);
    this.committed = this.pending!;
    this.pending = undefined;
  }
  transactionAbort(engine: EngineHandle): void {
    this.record('FwpmTransactionAbort0', engine);
    this.pending = undefined;
  }
  providerAdd(engine: EngineHandle, provider: Parameters<WfpNativeApi['providerAdd']>[1]): void {
    this.record('FwpmProviderAdd0', engine, provider);
    this.add(this.state().providers, guidText(provider.providerKey), 'FwpmProviderAdd0');
  }
  subLayerAdd(engine: EngineHandle, subLayer: Parameters<WfpNativeApi['subLayerAdd']>[1]): void {
    this.record('FwpmSubLayerAdd0', engine, subLayer);
    this.add(this.state().subLayers, guidText(subLayer.subLayerKey), 'FwpmSubLayerAdd0');
  }
  filterAdd(engine: EngineHandle, filter: Parameters<WfpNativeApi['filterAdd']>[1]): void {
    this.record('FwpmFilterAdd0', engine, filter);
    const key = guidText(filter.filterKey);
    const { filters } = this.state();
    if (filters.has(key)) throw new WfpNativeError('FwpmFilterAdd0', FwpError.ALREADY_EXISTS);
    filters.set(key, { layer: guidText(filter.layerKey), subLayer: guidText(filter.subLayerKey) });
  }
  filterDeleteByKey(engine: EngineHandle, key: GuidFields): void {
    this.record('FwpmFilterDeleteByKey0', engine, key);
    if (!this.state().filters.delete(guidText(key))) {
      throw new WfpNativeError('FwpmFilterDeleteByKey0', FwpError.FILTER_NOT_FOUND);
    }
  }
  subLayerDeleteByKey(engine: EngineHandle, key: GuidFields): void {
    this.record('FwpmSubLayerDeleteByKey0', engine, key);
    if (!this.state().subLayers.delete(guidText(key))) {
      throw new WfpNativeError('FwpmSubLayerDeleteByKey0', FwpError.SUBLAYER_NOT_FOUND);
    }
  }
  providerDeleteByKey(engine: EngineHandle, key: GuidFields): void {
    this.record('FwpmProviderDeleteByKey0', engine, key);
    if (!this.state().providers.delete(guidText(key))) {
      throw new WfpNativeError('FwpmProviderDeleteByKey0', FwpError.PROVIDER_NOT_FOUND);
    }
  }
  filterEnum(engine: EngineHandle, template: Parameters<WfpNativeApi['filterEnum']>[1]): EnumeratedFilter[] {
    this.record('FwpmFilterEnum0', engine, template);
    const layer = guidText(template.layerKey);
    return [...this.state().filters]
      .filter(([, f]) => f.layer === layer)
      .map(([filterKey, f]) => ({ filterKey, subLayerKey: f.subLayer }));
  }
  interfaceAliasToLuid(alias: string): bigint {
    this.record('ConvertInterfaceAliasToLuid', null, alias);
    const luid = this.luids.get(alias);
    if (luid === undefined) throw new WfpNativeError('ConvertInterfaceAliasToLuid', 1168);
    return luid;
  }

  private add(set: Set<string>, key: string, fn: string): void {
    if (set.has(key)) throw new WfpNativeError(fn, FwpError.ALREADY_EXISTS);
    set.add(key);
  }
}
