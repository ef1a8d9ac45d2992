import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { type ConnectionOptions, connect, createSecureContext, type SecureContext } from 'node:tls';
import { CONNECT_TIMEOUT_MS, limitConnectTime } from './connect-timeout';
import { pinnedTlsConnect } from './pinned-connect';

/**
 * A `lookup` that answers every name with this one address: the URL keeps its host name (SNI, host
 * name check, Host header) while the connection goes to the address picked by the caller.
 */
export function fixedLookup(address: string): LookupFunction {
  const family = isIP(address) === 6 ? 6 : 4;
  return (_host, options, callback) => {
    if (options.all)
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/** Every address of a name (system resolver, its order), giving up after `timeoutMs`. */
export async function resolveHostAddresses(host: string, timeoutMs = 1_000): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`resolving ${host} took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const found = await Promise.race([dnsLookup(host, { all: true, verbatim: true }), timeout]);
    return found.map((a) => a.address);
  } finally {
    clearTimeout(timer);
  }
}

type ConnectCallback = (err: Error | null, socket: Socket) => void;
export type CreateConnection = (
  options: ConnectionOptions & { path?: string },
  callback: ConnectCallback,
) => Socket | undefined;

export interface BrokerTlsTrust {
  /** PEM contents of trusted CAs; none: the system's. Ignored when pins are given. */
  ca?: Buffer[];
  /** SHA-256 pins: the certificate must be one of these (chain verification is replaced). */
  fingerprints?: readonly string[];
}

/**
 * A `createConnection` (https.Agent, ws) for a broker: pinned when fingerprints are given, else
 * verified against `ca` or the system's CAs; either way with a bounded TCP connect time.
 */
export function brokerTlsConnect(
  trust: BrokerTlsTrust,
  opts: { connectTimeoutMs?: number; mismatch?: (expected: string, actual: string) => Error } = {},
): CreateConnection {
  const connectTimeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  if (trust.fingerprints && trust.fingerprints.length > 0)
    return pinnedTlsConnect(trust.fingerprints, opts.mismatch, { connectTimeoutMs });
  // One context for every connection (see pinnedTlsConnect): the CAs are parsed once.
  let context: SecureContext | undefined;
  return (options) => {
    const host = options.host ?? 'localhost';
    context ??= createSecureContext(trust.ca && trust.ca.length > 0 ? { ca: trust.ca } : {});
    const socket = connect({
      ...options,
      path: undefined, // the request path, not a Unix socket
      servername: options.servername ?? (isIP(host) ? undefined : host),
      secureContext: context,
    });
    limitConnectTime(socket, connectTimeoutMs);
    return socket;
  };
}
