import { type ListenAddress, parseListenAddress } from '@trellis/metrics';
import { DEFAULT_LOCAL_UI_PORT, DEFAULT_LOCAL_UI_TOKEN_FILE } from '@trellis/proto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultSocket, defaultStateDir } from './platform/default-paths';
import type { WireGuardMode } from './wireguard/backend';

export interface DaemonOptions {
  stateDir: string;
  socket: string;
  interfaceName: string;
  listenPort: number;
  wireguard: WireGuardMode;
  logLevel: string;
  /** Ask the gateway to forward the listen port (UPnP-IGD / NAT-PMP / PCP). */
  portMapping: boolean;
  /** Enforce the access policy with the OS firewall (`off`: every peer may open everything here). */
  firewall: 'auto' | 'off';
  /** Where Prometheus metrics are served (`GET /metrics`); null: not served. */
  metricsListen: ListenAddress | null;
  /** How the account's names are answered and how the OS is pointed at them (see DnsMode). */
  dns: DnsMode;
  /** The resolv.conf that `resolv-conf` mode manages (and `auto` reads). */
  resolvConf: string;
  /** Where the tray's local web UI is served (loopback only); null: not served. */
  uiListen: ListenAddress | null;
  /** The local user who may use the UI (owns the token file); null: root only. */
  operator: string | null;
  /** Where the UI's URL and token are written for the operator (0600). */
  uiTokenFile: string;
}

/**
 * `auto`: systemd-resolved when it runs, else a managed resolv.conf; `stub`: answer on the overlay
 * address but leave the OS alone; `off`: no names on this device.
 */
export type DnsMode = 'auto' | 'resolved' | 'resolv-conf' | 'stub' | 'off';
export const DNS_MODES: readonly DnsMode[] = ['auto', 'resolved', 'resolv-conf', 'stub', 'off'];

export const DEFAULT_STATE_DIR = defaultStateDir();

/** Flags win over environment variables, which win over defaults. */
export function parseDaemonOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): DaemonOptions {
  const cmd = new Command('trellisd')
    .description('Trellis agent daemon (runs in the foreground; logs JSON to stdout)')
    .addOption(
      new Option('--state-dir <dir>', 'state directory').env('TRELLIS_STATE_DIR').default(DEFAULT_STATE_DIR),
    )
    .addOption(
      new Option(
        '--socket <path>',
        'control socket (default <state-dir>/trellisd.sock; on Windows \\\\.\\pipe\\trellisd)',
      ).env('TRELLIS_SOCKET'),
    )
    .addOption(
      new Option('--interface <name>', 'WireGuard interface name')
        .env('TRELLIS_INTERFACE')
        .default('trellis0'),
    )
    .addOption(
      new Option('--listen-port <port>', 'WireGuard UDP port')
        .env('TRELLIS_LISTEN_PORT')
        .default(51820)
        .argParser(parsePort),
    )
    .addOption(
      new Option('--wireguard <mode>', 'WireGuard implementation')
        .choices(['auto', 'kernel', 'userspace'])
        .default('auto'),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
        .env('TRELLIS_LOG_LEVEL')
        .default('info'),
    )
    .addOption(
      new Option(
        '--firewall <mode>',
        'enforce the access policy with the OS firewall (off: peers may open anything)',
      )
        .choices(['auto', 'off'])
        .env('TRELLIS_FIREWALL')
        .default('auto'),
    )
    .addOption(
      new Option('--metrics-listen <host:port|off>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
        .env('TRELLIS_METRICS_LISTEN')
        .default('off'),
    )
    .addOption(
      new Option('--dns <mode>', "answer the account's names, and point the OS resolver at them")
        .choices(DNS_MODES)
        .env('TRELLIS_DNS')
        .default('auto'),
    )
    .addOption(
      new Option('--resolv-conf <path>', 'the resolv.conf to manage without systemd-resolved')
        .env('TRELLIS_RESOLV_CONF')
        .default('/etc/resolv.conf'),
    )
    .addOption(
      new Option(
        '--ui-listen <host:port|off>',
        `serve the tray's local web UI on a loopback address (e.g. 127.0.0.1:${DEFAULT_LOCAL_UI_PORT})`,
      )
        .env('TRELLIS_UI_LISTEN')
        .default('off'),
    )
    .addOption(
      new Option('--operator <user>', 'the local user who may use the local UI (default: root only)').env(
        'TRELLIS_OPERATOR',
      ),
    )
    .addOption(
      new Option('--ui-token-file <path>', "where the local UI's URL and token are written (0600)")
        .env('TRELLIS_UI_TOKEN_FILE')
        .default(DEFAULT_LOCAL_UI_TOKEN_FILE),
    )
    .option('--no-port-mapping', 'do not ask the gateway (UPnP-IGD / NAT-PMP / PCP) to forward the port')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined }); // errors are thrown; trellisd prints them once
  // commander reads env from process.env; honour an explicit env object for tests.
  const saved = process.env;
  process.env = env;
  try {
    cmd.parse(argv, { from: 'user' });
  } finally {
    process.env = saved;
  }
  const o = cmd.opts<{
    stateDir: string;
    socket?: string;
    interface: string;
    listenPort: number | string;
    wireguard: WireGuardMode;
    logLevel: string;
    portMapping: boolean;
    firewall: 'auto' | 'off';
    metricsListen: string;
    dns: DnsMode;
    resolvConf: string;
    uiListen: string;
    operator?: string;
    uiTokenFile: string;
  }>();
  const name = o.interface;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new InvalidArgumentError(`bad interface name: ${name}`);
  return {
    stateDir: o.stateDir,
    socket: o.socket ?? defaultSocket(o.stateDir),
    interfaceName: name,
    listenPort: typeof o.listenPort === 'number' ? o.listenPort : parsePort(o.listenPort),
    wireguard: o.wireguard,
    logLevel: o.logLevel,
    portMapping: o.portMapping,
    firewall: o.firewall,
    metricsListen: o.metricsListen === 'off' ? null : listenAddress(o.metricsListen),
    dns: o.dns,
    resolvConf: o.resolvConf,
    uiListen: o.uiListen === 'off' ? null : loopbackAddress(o.uiListen),
    operator: o.operator || null,
    uiTokenFile: o.uiTokenFile,
  };
}

/** The UI answers the local user only: a loopback address, never a wildcard or a LAN one. */
function loopbackAddress(text: string): ListenAddress {
  const at = listenAddress(text, '--ui-listen');
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(at.host) && at.host !== '::1')
    throw new InvalidArgumentError(
      `--ui-listen must be a loopback address (127.0.0.1 or [::1]), got "${text}"`,
    );
  return at;
}

function listenAddress(text: string, flag = '--metrics-listen'): ListenAddress {
  try {
    return parseListenAddress(flag, text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`bad port: ${v}`);
  return n;
}
