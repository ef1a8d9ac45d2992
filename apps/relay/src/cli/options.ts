import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseListenAddress } from '@trellis/metrics';
import { DnsLabel, PortRange, parseBrokerUrls, RelayTcpInfo, RelayToken } from '@trellis/proto';
import { KERNEL_FORWARDING_MODES, type KernelForwardingMode } from '../kernel/kernel-path';
import type { HostPort, RelayServiceConfig } from '../relay-service';

/** A mistake in the flags: printed as one line, exit code 2. */
export class FlagError extends Error {}

export interface RelayFlags {
  /** Each one URL or a comma-separated list (several instances of one broker). */
  broker?: string[];
  caFile?: string[];
  fingerprint?: string[];
  token?: string;
  name?: string;
  listen: string;
  publicAddress?: string;
  ports: string;
  tcpListen: string;
  tcpPublicUrl?: string;
  tlsCert?: string;
  tlsKey?: string;
  stateDir: string;
  metricsListen: string;
  logLevel: string;
  kernelForwarding: string;
  reflectorPort?: string;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);
const OFF = 'off';

/** `HOST:PORT` or `[V6]:PORT`; the host may be empty (all addresses). */
export function parseHostPort(flag: string, text: string): HostPort {
  try {
    return parseListenAddress(flag, text);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
}

function parseReflectorPort(text: string): number | null {
  if (text === OFF) return null;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new FlagError(`--reflector-port must be a port or "off", got "${text}"`);
  return port;
}

export function parsePorts(text: string): { first: number; last: number } {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  const range = m ? PortRange.safeParse({ first: Number(m[1]), last: Number(m[2]) }) : undefined;
  if (!range?.success) throw new FlagError(`--ports must be FIRST-LAST within 1-65535, got "${text}"`);
  return range.data;
}

/** This machine's host name as a DNS label (the relay's default name). */
export function defaultName(host = hostname()): string {
  const label = host
    .split('.')[0]!
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label || 'relay';
}

/** Checks every flag and turns them into the service's configuration; throws FlagError. */
export function configFromFlags(flags: RelayFlags, env: NodeJS.ProcessEnv): RelayServiceConfig {
  const brokers = parseBrokerFlags(flags.broker, env);
  const caFiles = flags.caFile ?? [];
  const fingerprints = flags.fingerprint ?? [];
  if (caFiles.length > 0 && fingerprints.length > 0)
    throw new FlagError('give --ca-file or --fingerprint, not both');
  for (const fingerprint of fingerprints)
    if (!/^(sha256[: ])?([0-9a-f]{2}:?){31}[0-9a-f]{2}$/i.test(fingerprint.trim()))
      throw new FlagError('--fingerprint must be a SHA-256 certificate fingerprint (hex, colons optional)');
  const token = flags.token ?? env.TRELLIS_RELAY_TOKEN;
  if (!token) throw new FlagError('a relay token is required: --token or TRELLIS_RELAY_TOKEN');
  if (!RelayToken.safeParse(token).success)
    throw new FlagError('the relay token must look like trl_ + 43 characters');
  const name = flags.name ?? defaultName();
  if (!DnsLabel.safeParse(name).success)
    throw new FlagError(`--name must be a DNS label (a-z, 0-9, -), got "${name}"`);
  const listen = flags.listen.replace(/^\[|\]$/g, '');
  const publicAddress = flags.publicAddress ?? (WILDCARDS.has(listen) ? undefined : listen);
  if (!publicAddress)
    throw new FlagError(`--public-address is required when --listen is ${listen || 'a wildcard'}`);
  if (publicAddress.length > 64) throw new FlagError('--public-address is too long');
  const ports = parsePorts(flags.ports);

  let tcp: RelayServiceConfig['tcp'] = null;
  if (flags.tcpListen !== OFF) {
    const tcpListen = parseHostPort('--tcp-listen', flags.tcpListen);
    const publicUrl = flags.tcpPublicUrl;
    if (publicUrl !== undefined && !RelayTcpInfo.shape.url.safeParse(publicUrl).success) {
      throw new FlagError(`--tcp-public-url must be wss://host[:port] without a path, got "${publicUrl}"`);
    }
    if (!flags.tlsCert !== !flags.tlsKey) throw new FlagError('--tls-cert and --tls-key go together');
    tcp = { listen: tcpListen, publicUrl, certFile: flags.tlsCert, keyFile: flags.tlsKey };
  }
  return {
    brokers,
    trust: {
      ...(caFiles.length > 0 ? { caFiles: caFiles.map((f) => resolve(f)) } : {}),
      ...(fingerprints.length > 0
        ? { fingerprints: fingerprints.map((f) => f.trim().replace(/^sha256[: ]/i, '')) }
        : {}),
    },
    token,
    name,
    listen: listen || '0.0.0.0',
    publicAddress,
    ports,
    tcp,
    stateDir: resolve(flags.stateDir),
    metricsListen:
      flags.metricsListen === OFF ? null : parseHostPort('--metrics-listen', flags.metricsListen),
    reflectorPort: parseReflectorPort(flags.reflectorPort ?? OFF),
    kernelForwarding: parseKernelForwarding(flags.kernelForwarding),
  };
}

/** `--broker` (repeated, or comma-separated lists), else `TRELLIS_RELAY_BROKER`. */
function parseBrokerFlags(flags: string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  const given =
    flags && flags.length > 0 ? flags : env.TRELLIS_RELAY_BROKER ? [env.TRELLIS_RELAY_BROKER] : [];
  if (given.length === 0) throw new FlagError('--broker URL is required (or TRELLIS_RELAY_BROKER)');
  try {
    return parseBrokerUrls(given);
  } catch (err) {
    throw new FlagError(`--broker: ${(err as Error).message}`);
  }
}

function parseKernelForwarding(text: string): KernelForwardingMode {
  const mode = KERNEL_FORWARDING_MODES.find((m) => m === text);
  if (!mode) throw new FlagError(`--kernel-forwarding must be auto, on or off, got "${text}"`);
  return mode;
}
