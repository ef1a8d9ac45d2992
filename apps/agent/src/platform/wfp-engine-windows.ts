import type { WfpEngine, WfpFilter, WfpProvider, WfpSubLayer } from '@trellis/firewall';
import { FwpError, WFP_LAYER_GUIDS } from './wfp-native';
import { type EngineHandle, loadWfpNative, type WfpNativeApi, WfpNativeError } from './wfp-native-api';
import {
  filterStruct,
  guidFields,
  layerEnumTemplate,
  providerStruct,
  sessionStruct,
  subLayerStruct,
} from './wfp-structs';

/**
 * Results that mean the session is gone, not that the call was wrong: the Base Filtering Engine
 * restarted or the RPC connection to it broke. Fwpm* return Win32 codes, RPC failures sometimes
 * as HRESULTs; ERROR_INVALID_HANDLE is also RPC's answer to a context handle the server no longer knows.
 */
export const WFP_SESSION_LOST: readonly number[] = [
  6, // ERROR_INVALID_HANDLE
  1722, // RPC_S_SERVER_UNAVAILABLE
  0x800706ba, // RPC_S_SERVER_UNAVAILABLE as an HRESULT
  0x80010108, // RPC_E_DISCONNECTED
  0x80320010, // FWP_E_SESSION_ABORTED
];

/** Rethrows unless `err` is one of these WFP results, each meaning the wanted state already holds. */
function tolerate(err: unknown, ...codes: number[]): void {
  if (!(err instanceof WfpNativeError && codes.includes(err.code))) throw err;
}

/**
 * The Windows Filtering Platform through fwpuclnt.dll: the engine WfpBackend drives on Windows.
 * The native API is loaded on first use (koffi and the DLLs never load where this is only
 * constructed, e.g. on Linux or in tests of the platform wiring).
 */
export class WfpNativeEngine implements WfpEngine {
  private api: WfpNativeApi | undefined;
  private handle: EngineHandle | undefined;

  constructor(private readonly load: () => WfpNativeApi = loadWfpNative) {}

  private native(): WfpNativeApi {
    this.api ??= this.load();
    return this.api;
  }

  private engine(): EngineHandle {
    if (this.handle === undefined) throw new Error('WFP engine session is not open');
    return this.handle;
  }

  async openSession(options: { dynamic: boolean }): Promise<void> {
    // The old handle may belong to a session that is gone: closing it then fails, and must not
    // stop the new one from opening.
    await this.close().catch(() => undefined);
    this.handle = this.native().engineOpen(sessionStruct(options.dynamic));
  }

  isSessionLost(err: unknown): boolean {
    return err instanceof WfpNativeError && WFP_SESSION_LOST.includes(err.code);
  }

  /** Ends the session; with dynamic=false the filters it added stay in force. */
  async close(): Promise<void> {
    if (this.handle === undefined) return;
    const handle = this.handle;
    this.handle = undefined;
    this.native().engineClose(handle);
  }

  async filterKeys(subLayerKey: string): Promise<string[]> {
    const engine = this.engine();
    const wanted = subLayerKey.toLowerCase();
    const keys = new Set<string>();
    // Enumeration is per layer; ours are the layers wfp-filters.ts places filters in.
    for (const layer of Object.values(WFP_LAYER_GUIDS)) {
      for (const f of this.native().filterEnum(engine, layerEnumTemplate(layer))) {
        if (f.subLayerKey === wanted) keys.add(f.filterKey);
      }
    }
    return [...keys];
  }

  async interfaceLuid(alias: string): Promise<bigint> {
    return this.native().interfaceAliasToLuid(alias);
  }

  async beginTransaction(): Promise<void> {
    this.native().transactionBegin(this.engine());
  }

  async commitTransaction(): Promise<void> {
    this.native().transactionCommit(this.engine());
  }

  async abortTransaction(): Promise<void> {
    this.native().transactionAbort(this.engine());
  }

  async addProvider(provider: WfpProvider): Promise<void> {
    try {
      this.native().providerAdd(this.engine(), providerStruct(provider));
    } catch (err) {
      tolerate(err, FwpError.ALREADY_EXISTS);
    }
  }

  async addSubLayer(subLayer: WfpSubLayer): Promise<void> {
    try {
      this.native().subLayerAdd(this.engine(), subLayerStruct(subLayer));
    } catch (err) {
      tolerate(err, FwpError.ALREADY_EXISTS);
    }
  }

  async addFilter(filter: WfpFilter): Promise<void> {
    this.native().filterAdd(this.engine(), filterStruct(filter));
  }

  // Deleting what is already gone leaves the wanted state: remove() after a reboot, or twice.
  async deleteFilterByKey(key: string): Promise<void> {
    try {
      this.native().filterDeleteByKey(this.engine(), guidFields(key));
    } catch (err) {
      tolerate(err, FwpError.FILTER_NOT_FOUND);
    }
  }

  async deleteSubLayerByKey(key: string): Promise<void> {
    try {
      this.native().subLayerDeleteByKey(this.engine(), guidFields(key));
    } catch (err) {
      tolerate(err, FwpError.SUBLAYER_NOT_FOUND);
    }
  }

  async deleteProviderByKey(key: string): Promise<void> {
    try {
      this.native().providerDeleteByKey(this.engine(), guidFields(key));
    } catch (err) {
      tolerate(err, FwpError.PROVIDER_NOT_FOUND);
    }
  }
}
