import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import {
  type AdapterHandle,
  guidFields,
  LoggerLevel,
  Win32Error,
  type WireGuardNtApi,
  WireGuardNtError,
  type WireGuardNtFunction,
  wireGuardNtTypes,
} from './wireguard-nt-api';

/** wireguard.dll ships next to trellisd.exe unless TRELLIS_WIREGUARD_DLL names another. */
export function defaultWireGuardDllPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.TRELLIS_WIREGUARD_DLL ?? join(dirname(process.execPath), 'wireguard.dll');
}

const INITIAL_CONFIG_BYTES = 4096;
const CONFIG_ATTEMPTS = 8;

/** One bound DLL function: called synchronously, or through `async` on a koffi worker thread. */
export interface NativeFunction {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}

export type NativeWireGuardNt = Record<WireGuardNtFunction, NativeFunction>;
export type LoggerCallback = (level: number, timestamp: unknown, message: string) => number;

/** Loads wireguard.dll through koffi (Windows only) and binds it. */
export function loadWireGuardNt(dllPath: string, logger: Logger): WireGuardNtApi {
  const { koffi, t } = wireGuardNtTypes();
  const lib = koffi.load(dllPath);
  const getLastError = koffi.load('kernel32.dll').func('uint32_t __stdcall GetLastError()');
  const native = {} as NativeWireGuardNt;
  for (const name of Object.keys(t.prototypes) as WireGuardNtFunction[])
    native[name] = lib.func(t.prototypes[name]);
  const register = (cb: LoggerCallback) => koffi.register(cb, koffi.pointer(t.LOGGER_CALLBACK));
  return bindWireGuardNt(native, () => Number(getLastError()), register, logger);
}

/**
 * C conventions to JS ones: a NULL handle or FALSE result throws WireGuardNtError with the
 * thread's last error. Calls whose failure needs the last error run synchronously and read it
 * right after (koffi keeps it per call). Close and logging changes run on a koffi worker thread:
 * they wait for the DLL's log thread, which may itself be waiting to deliver a line to the JS
 * thread; blocking the JS thread there would deadlock.
 */
export function bindWireGuardNt(
  native: NativeWireGuardNt,
  lastError: () => number,
  registerLogger: (cb: LoggerCallback) => unknown,
  logger: Logger,
): WireGuardNtApi {
  // Registered for the life of the process: the DLL keeps the pointer in a global.
  const onLog: LoggerCallback = (level, _timestamp, message) => {
    const line = { source: 'wireguard-nt' };
    if (level === LoggerLevel.ERR) logger.error(line, message);
    else if (level === LoggerLevel.WARN) logger.warn(line, message);
    else logger.info(line, message);
    return 1;
  };
  native.WireGuardSetLogger(registerLogger(onLog));

  const fail = (name: WireGuardNtFunction): never => {
    throw new WireGuardNtError(name, lastError());
  };
  const onWorker = (name: WireGuardNtFunction, ...args: unknown[]) =>
    new Promise<unknown>((resolve, reject) =>
      native[name].async(...args, (err: unknown, result: unknown) =>
        err ? reject(err instanceof Error ? err : new Error(`${name}: ${String(err)}`)) : resolve(result),
      ),
    );
  const {
    WireGuardCreateAdapter: create,
    WireGuardOpenAdapter: open,
    WireGuardGetAdapterLUID: getLuid,
    WireGuardSetAdapterState: setState,
    WireGuardSetConfiguration: setConfig,
    WireGuardGetConfiguration: getConfig,
  } = native;

  return {
    async createAdapter(name, tunnelType, guid) {
      const handle = create(name, tunnelType, guidFields(guid)) as AdapterHandle | null;
      return handle ?? fail('WireGuardCreateAdapter');
    },
    async openAdapter(name) {
      const handle = open(name) as AdapterHandle | null;
      if (handle) return handle;
      const code = lastError();
      if (code === Win32Error.FILE_NOT_FOUND) return null;
      throw new WireGuardNtError('WireGuardOpenAdapter', code);
    },
    async closeAdapter(adapter) {
      await onWorker('WireGuardCloseAdapter', adapter);
    },
    async getAdapterLuid(adapter) {
      const out: unknown[] = [0];
      getLuid(adapter, out);
      return BigInt(out[0] as number | bigint);
    },
    async setAdapterState(adapter, state) {
      if (!setState(adapter, state)) fail('WireGuardSetAdapterState');
    },
    async setAdapterLogging(adapter, state) {
      // Its only failure is the DLL not starting its log thread; GetLastError is on the worker.
      if (!(await onWorker('WireGuardSetAdapterLogging', adapter, state))) {
        throw new WireGuardNtError('WireGuardSetAdapterLogging', 0);
      }
    },
    async setConfiguration(adapter, config) {
      if (!setConfig(adapter, config, config.length)) fail('WireGuardSetConfiguration');
    },
    async getConfiguration(adapter) {
      let size = INITIAL_CONFIG_BYTES;
      for (let i = 0; i < CONFIG_ATTEMPTS; i++) {
        const buf = Buffer.alloc(size);
        const bytes = new Uint32Array([size]);
        if (getConfig(adapter, buf, bytes)) return buf.subarray(0, bytes[0]);
        const code = lastError();
        if (code !== Win32Error.MORE_DATA) throw new WireGuardNtError('WireGuardGetConfiguration', code);
        // Peers can be added between the two calls: take the size asked for, at least doubled.
        size = Math.max(bytes[0] ?? 0, size * 2);
      }
      throw new WireGuardNtError('WireGuardGetConfiguration', Win32Error.MORE_DATA);
    },
  };
}
