import type * as Koffi from 'koffi';
import { namedType } from '../util/koffi-types';
import { InterfaceFlag, KEY_LENGTH, PeerFlag } from './wireguard-nt-struct';

export { InterfaceFlag, PeerFlag };

/** WIREGUARD_ADAPTER_STATE */
export const AdapterState = { DOWN: 0, UP: 1 } as const;
export type AdapterState = (typeof AdapterState)[keyof typeof AdapterState];

/** WIREGUARD_ADAPTER_LOG_STATE */
export const AdapterLogState = { OFF: 0, ON: 1, ON_WITH_PREFIX: 2 } as const;
export type AdapterLogState = (typeof AdapterLogState)[keyof typeof AdapterLogState];

/** WIREGUARD_LOGGER_LEVEL */
export const LoggerLevel = { INFO: 0, WARN: 1, ERR: 2 } as const;

/** An opaque WIREGUARD_ADAPTER_HANDLE. */
export type AdapterHandle = { readonly __wireguardAdapter: unique symbol };

/** Win32 error codes this code tells apart. */
export const Win32Error = {
  FILE_NOT_FOUND: 2,
  GEN_FAILURE: 31,
  MORE_DATA: 234,
  DEVICE_REMOVED: 1617,
  NOT_FOUND: 1168,
  DEVICE_NOT_CONNECTED: 1167,
  DEVICE_NOT_AVAILABLE: 4319,
} as const;

export class WireGuardNtError extends Error {
  constructor(
    readonly fn: string,
    readonly code: number,
  ) {
    super(`${fn} failed: Win32 error ${code}`);
  }
}

/**
 * The wireguard.dll functions the backend uses, with C conventions turned into JS ones: a failed
 * call throws WireGuardNtError with GetLastError's code. Injectable, so tests use a recording fake.
 */
export interface WireGuardNtApi {
  createAdapter(name: string, tunnelType: string, guid: Buffer): Promise<AdapterHandle>;
  /** Null when no adapter has that name. */
  openAdapter(name: string): Promise<AdapterHandle | null>;
  /** Releases the handle; an adapter this process created goes away with it. */
  closeAdapter(adapter: AdapterHandle): Promise<void>;
  getAdapterLuid(adapter: AdapterHandle): Promise<bigint>;
  setAdapterState(adapter: AdapterHandle, state: AdapterState): Promise<void>;
  setAdapterLogging(adapter: AdapterHandle, state: AdapterLogState): Promise<void>;
  setConfiguration(adapter: AdapterHandle, config: Buffer): Promise<void>;
  getConfiguration(adapter: AdapterHandle): Promise<Buffer>;
}

export interface WireGuardNtTypes {
  GUID: Koffi.IKoffiCType;
  SOCKADDR_INET: Koffi.IKoffiCType;
  WIREGUARD_ALLOWED_IP: Koffi.IKoffiCType;
  WIREGUARD_PEER: Koffi.IKoffiCType;
  WIREGUARD_INTERFACE: Koffi.IKoffiCType;
  LOGGER_CALLBACK: Koffi.IKoffiCType;
  prototypes: Record<WireGuardNtFunction, string>;
}

export type WireGuardNtFunction =
  | 'WireGuardCreateAdapter'
  | 'WireGuardOpenAdapter'
  | 'WireGuardCloseAdapter'
  | 'WireGuardGetAdapterLUID'
  | 'WireGuardSetAdapterState'
  | 'WireGuardSetAdapterLogging'
  | 'WireGuardSetConfiguration'
  | 'WireGuardGetConfiguration'
  | 'WireGuardSetLogger';

let types: { koffi: typeof Koffi; t: WireGuardNtTypes } | null = null;

/**
 * The C declarations of api/wireguard.h in koffi's terms. koffi is required here, on first use,
 * so that loading this module on Linux or macOS loads neither koffi nor the DLL.
 */
export function wireGuardNtTypes(): { koffi: typeof Koffi; t: WireGuardNtTypes } {
  if (types) return types;
  const koffi = require('koffi') as typeof Koffi;
  const named = (name: string, declare: () => Koffi.IKoffiCType) => namedType(koffi, name, declare);
  const key = koffi.array('uint8_t', KEY_LENGTH);
  named('WIREGUARD_ADAPTER', () => koffi.opaque('WIREGUARD_ADAPTER'));
  named('WIREGUARD_ADAPTER_HANDLE', () => koffi.pointer('WIREGUARD_ADAPTER_HANDLE', 'WIREGUARD_ADAPTER'));
  const GUID = named('GUID', () =>
    koffi.struct('GUID', {
      Data1: 'uint32_t',
      Data2: 'uint16_t',
      Data3: 'uint16_t',
      Data4: koffi.array('uint8_t', 8),
    }),
  );
  const IN_ADDR = named('IN_ADDR', () =>
    koffi.union('IN_ADDR', { S_un_b: koffi.array('uint8_t', 4), S_addr: 'uint32_t' }),
  );
  const IN6_ADDR = named('IN6_ADDR', () =>
    koffi.union('IN6_ADDR', {
      Byte: koffi.array('uint8_t', 16),
      Word: koffi.array('uint16_t', 8),
    }),
  );
  const SOCKADDR_IN = named('SOCKADDR_IN', () =>
    koffi.struct('SOCKADDR_IN', {
      sin_family: 'uint16_t',
      sin_port: 'uint16_t',
      sin_addr: IN_ADDR,
      sin_zero: koffi.array('uint8_t', 8),
    }),
  );
  const SOCKADDR_IN6 = named('SOCKADDR_IN6', () =>
    koffi.struct('SOCKADDR_IN6', {
      sin6_family: 'uint16_t',
      sin6_port: 'uint16_t',
      sin6_flowinfo: 'uint32_t',
      sin6_addr: IN6_ADDR,
      sin6_scope_id: 'uint32_t',
    }),
  );
  const SOCKADDR_INET = named('SOCKADDR_INET', () =>
    koffi.union('SOCKADDR_INET', {
      Ipv4: SOCKADDR_IN,
      Ipv6: SOCKADDR_IN6,
      si_family: 'uint16_t',
    }),
  );
  // ALIGNED(8) on a struct: its first member aligned to 8 gives the struct that alignment too.
  const WIREGUARD_ALLOWED_IP = named('WIREGUARD_ALLOWED_IP', () =>
    koffi.struct('WIREGUARD_ALLOWED_IP', {
      Address: [8, koffi.union({ V4: IN_ADDR, V6: IN6_ADDR })],
      AddressFamily: 'uint16_t',
      Cidr: 'uint8_t',
    }),
  );
  const WIREGUARD_PEER = named('WIREGUARD_PEER', () =>
    koffi.struct('WIREGUARD_PEER', {
      Flags: [8, 'uint32_t'],
      Reserved: 'uint32_t',
      PublicKey: key,
      PresharedKey: key,
      PersistentKeepalive: 'uint16_t',
      Endpoint: SOCKADDR_INET,
      TxBytes: 'uint64_t',
      RxBytes: 'uint64_t',
      LastHandshake: 'uint64_t',
      AllowedIPsCount: 'uint32_t',
    }),
  );
  const WIREGUARD_INTERFACE = named('WIREGUARD_INTERFACE', () =>
    koffi.struct('WIREGUARD_INTERFACE', {
      Flags: [8, 'uint32_t'],
      ListenPort: 'uint16_t',
      PrivateKey: key,
      PublicKey: key,
      PeersCount: 'uint32_t',
    }),
  );
  // Newer DLLs declare the logger as returning BOOL, older ones VOID; an int return suits both.
  const LOGGER_CALLBACK = named('WIREGUARD_LOGGER_CALLBACK', () =>
    koffi.proto(
      'int __stdcall WIREGUARD_LOGGER_CALLBACK(int Level, uint64_t Timestamp, const char16_t *Message)',
    ),
  );
  // BOOL is a 32-bit int; enums are ints; handles are pointers. Buffers stand in for the
  // configuration and out-parameters (koffi passes a Buffer's memory as the pointer).
  const H = 'WIREGUARD_ADAPTER_HANDLE';
  const prototypes: Record<WireGuardNtFunction, string> = {
    WireGuardCreateAdapter: `${H} __stdcall WireGuardCreateAdapter(const char16_t *Name, const char16_t *TunnelType, const GUID *RequestedGUID)`,
    WireGuardOpenAdapter: `${H} __stdcall WireGuardOpenAdapter(const char16_t *Name)`,
    WireGuardCloseAdapter: `void __stdcall WireGuardCloseAdapter(${H} Adapter)`,
    WireGuardGetAdapterLUID: `void __stdcall WireGuardGetAdapterLUID(${H} Adapter, _Out_ uint64_t *Luid)`,
    WireGuardSetAdapterState: `int __stdcall WireGuardSetAdapterState(${H} Adapter, int State)`,
    WireGuardSetAdapterLogging: `int __stdcall WireGuardSetAdapterLogging(${H} Adapter, int LogState)`,
    WireGuardSetConfiguration: `int __stdcall WireGuardSetConfiguration(${H} Adapter, const WIREGUARD_INTERFACE *Config, uint32_t Bytes)`,
    WireGuardGetConfiguration: `int __stdcall WireGuardGetConfiguration(${H} Adapter, _Out_ WIREGUARD_INTERFACE *Config, _Inout_ uint32_t *Bytes)`,
    WireGuardSetLogger: 'void __stdcall WireGuardSetLogger(WIREGUARD_LOGGER_CALLBACK *NewLogger)',
  };
  types = {
    koffi,
    t: {
      GUID,
      SOCKADDR_INET,
      WIREGUARD_ALLOWED_IP,
      WIREGUARD_PEER,
      WIREGUARD_INTERFACE,
      LOGGER_CALLBACK,
      prototypes,
    },
  };
  return types;
}

/** The GUID struct's fields for the 16 bytes of a GUID (as koffi takes a `const GUID *`). */
export function guidFields(guid: Buffer): { Data1: number; Data2: number; Data3: number; Data4: number[] } {
  return {
    Data1: guid.readUInt32LE(0),
    Data2: guid.readUInt16LE(4),
    Data3: guid.readUInt16LE(6),
    Data4: [...guid.subarray(8, 16)],
  };
}
