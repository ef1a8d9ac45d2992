import type { Logger } from 'pino';
import { UserError } from '../util/user-error';
import type { WireGuardBackend, WireGuardMode } from './backend';
import type { WgConfigUpdate, WgDeviceState } from './types';
import {
  type AdapterHandle,
  AdapterLogState,
  AdapterState,
  Win32Error,
  type WireGuardNtApi,
  WireGuardNtError,
} from './wireguard-nt-api';
import { adapterGuid, decodeState, encodeUpdate, formatGuid, hasNtChanges } from './wireguard-nt-config';
import { defaultWireGuardDllPath, loadWireGuardNt } from './wireguard-nt-dll';

/** The tunnel type Windows shows for the adapter (its device description). */
export const TUNNEL_TYPE = 'Trellis';

/** Errors that mean the adapter is gone (removed in Device Manager, driver reinstalled, ...). */
const ADAPTER_GONE: ReadonlySet<number> = new Set([
  Win32Error.FILE_NOT_FOUND,
  Win32Error.GEN_FAILURE,
  Win32Error.DEVICE_REMOVED,
  Win32Error.NOT_FOUND,
  Win32Error.DEVICE_NOT_CONNECTED,
  Win32Error.DEVICE_NOT_AVAILABLE,
]);

export interface WireGuardNtBackendOptions {
  interfaceName: string;
  logger: Logger;
  /** Loads wireguard.dll on first start (never at construction, so other platforms never load it). */
  loadApi: () => WireGuardNtApi;
}

/**
 * WireGuard on Windows through the wireguard-nt kernel driver (wireguard.dll). The adapter lives
 * as long as our handle: closing it (or this process dying) removes it. If it disappears under
 * us, the next read or write re-creates it and listeners re-apply the configuration.
 */
export class WireGuardNtBackend implements WireGuardBackend {
  readonly kind = 'wireguard-nt' as const;
  readonly interfaceName: string;
  private api: WireGuardNtApi | null = null;
  private adapter: AdapterHandle | null = null;
  private wanted = false;
  private readonly recreatedListeners: Array<() => void> = [];

  constructor(private readonly opts: WireGuardNtBackendOptions) {
    this.interfaceName = opts.interfaceName;
  }

  onRecreated(listener: () => void): void {
    this.recreatedListeners.push(listener);
  }

  async start(): Promise<void> {
    this.wanted = true;
    const api = this.loadedApi();
    if (this.adapter) {
      const alive = await api.getConfiguration(this.adapter).then(
        () => true,
        () => false,
      );
      if (alive) return;
      await this.release();
    }
    await this.refuseTakenName(api);
    this.adapter = await this.create(api);
  }

  async getState(): Promise<WgDeviceState> {
    const buf = await this.withAdapter((api, adapter) => api.getConfiguration(adapter));
    return decodeState(buf);
  }

  async apply(update: WgConfigUpdate): Promise<void> {
    if (!hasNtChanges(update)) return;
    const config = encodeUpdate(update);
    await this.withAdapter((api, adapter) => api.setConfiguration(adapter, config));
  }

  /** The adapter's NET_LUID, which the IP Helper API takes to address and route it. */
  async luid(): Promise<bigint> {
    return this.withAdapter((api, adapter) => api.getAdapterLuid(adapter));
  }

  async stop(): Promise<void> {
    this.wanted = false;
    await this.release();
  }

  private loadedApi(): WireGuardNtApi {
    this.api ??= this.opts.loadApi();
    return this.api;
  }

  /**
   * wireguard-nt removes our adapter when our handle closes or this process dies, so an adapter of
   * our name at start is another program's (a WireGuard for Windows tunnel named the same, say).
   * It is left alone: setting it down would cut that tunnel, and WireGuardCreateAdapter would
   * rename it.
   */
  private async refuseTakenName(api: WireGuardNtApi): Promise<void> {
    const other = await api.openAdapter(this.interfaceName);
    if (!other) return;
    await api.closeAdapter(other);
    throw new UserError(
      `an adapter named ${this.interfaceName} already exists (another WireGuard program?): choose another --interface`,
    );
  }

  private async create(api: WireGuardNtApi): Promise<AdapterHandle> {
    const guid = adapterGuid(this.interfaceName);
    const adapter = await api.createAdapter(this.interfaceName, TUNNEL_TYPE, guid);
    try {
      await api.setAdapterLogging(adapter, AdapterLogState.ON);
      // Up binds the UDP sockets, owned by this process; the configuration may follow later.
      await api.setAdapterState(adapter, AdapterState.UP);
    } catch (err) {
      await api.closeAdapter(adapter);
      throw err;
    }
    this.opts.logger.info(
      { interface: this.interfaceName, guid: formatGuid(guid) },
      'wireguard-nt adapter created',
    );
    return adapter;
  }

  private async release(): Promise<void> {
    const adapter = this.adapter;
    this.adapter = null;
    if (adapter && this.api) await this.api.closeAdapter(adapter);
  }

  private async withAdapter<T>(
    call: (api: WireGuardNtApi, adapter: AdapterHandle) => Promise<T>,
  ): Promise<T> {
    const api = this.api;
    const adapter = this.adapter;
    if (!api || !adapter) throw new Error(`WireGuard adapter ${this.interfaceName} is not started`);
    try {
      return await call(api, adapter);
    } catch (err) {
      if (this.wanted && this.adapter === adapter && isAdapterGone(err)) await this.recreate(api, adapter);
      throw err;
    }
  }

  /** The failed call still fails; listeners re-apply the configuration onto the fresh adapter. */
  private async recreate(api: WireGuardNtApi, gone: AdapterHandle): Promise<void> {
    this.opts.logger.error(
      { interface: this.interfaceName },
      'wireguard-nt adapter disappeared; re-creating it',
    );
    this.adapter = null;
    await api.closeAdapter(gone).catch(() => undefined);
    try {
      await this.refuseTakenName(api); // taken meanwhile: another program's, left alone
      this.adapter = await this.create(api);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message }, 'wireguard-nt adapter re-creation failed');
      return;
    }
    for (const listener of this.recreatedListeners) listener();
  }
}

function isAdapterGone(err: unknown): boolean {
  return err instanceof WireGuardNtError && ADAPTER_GONE.has(err.code);
}

/**
 * The Windows counterpart of select-backend.ts: the in-kernel wireguard-nt driver serves `auto`
 * and `kernel`; there is no userspace WireGuard on Windows here.
 */
export function selectWindowsBackend(
  mode: WireGuardMode,
  interfaceName: string,
  logger: Logger,
  loadApi: () => WireGuardNtApi = () => loadWireGuardNt(defaultWireGuardDllPath(), logger),
): WireGuardBackend {
  if (mode === 'userspace') {
    throw new UserError(
      '--wireguard userspace is not available on Windows; use auto or kernel (wireguard-nt)',
    );
  }
  return new WireGuardNtBackend({ interfaceName, logger, loadApi });
}
