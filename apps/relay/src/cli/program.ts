import { Command, CommanderError } from 'commander';
import { createLogger } from '../logger';
import { startRelayService } from '../relay-service';
import { RELAY_VERSION } from '../version';
import { configFromFlags, FlagError, type RelayFlags } from './options';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT). */
  stopSignal: () => Promise<string>;
}

const processIo: CliIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  env: process.env,
  stopSignal: () =>
    new Promise((resolve) => {
      const stop = (signal: string) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve(signal);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    }),
};

/** Collects a repeated flag's values. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

export const EXIT_FATAL = 1;
export const EXIT_USAGE = 2;

/** The `trellis-relay` command line; resolves the exit code once the relay has stopped. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  const program = new Command('trellis-relay')
    .description('Trellis relay: forwards WireGuard packets between two devices on an allocated port')
    .version(RELAY_VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .option(
      '--broker <url>',
      'broker base URL (https://host:port); repeat it or give a comma-separated list for several instances; default: $TRELLIS_RELAY_BROKER',
      collect,
    )
    .option(
      '--ca-file <pem>',
      'CA (or certificate) the broker certificate must chain to; may be repeated',
      collect,
    )
    .option(
      '--fingerprint <sha256>',
      "pin of the broker's certificate (SHA-256); repeat it for instances with their own",
      collect,
    )
    .option('--token <token>', 'relay token (trl_…); default: $TRELLIS_RELAY_TOKEN')
    .option('--name <label>', 'relay name (DNS label); default: the host name')
    .option('--listen <host>', 'UDP listen address', '0.0.0.0')
    .option('--public-address <host>', 'address devices send UDP to; default: --listen unless a wildcard')
    .option('--ports <first-last>', 'UDP port range for allocations', '40000-40999')
    .option('--tcp-listen <host:port|off>', 'TCP fallback (HTTPS/WebSocket) listen address', '0.0.0.0:443')
    .option('--tcp-public-url <wss-url>', 'wss://host:port advertised for the TCP fallback')
    .option('--tls-cert <file>', 'PEM certificate of the TCP fallback (default: self-signed in --state-dir)')
    .option('--tls-key <file>', 'PEM key for --tls-cert')
    .option('--state-dir <dir>', 'where the generated certificate is kept', '/var/lib/trellis-relay')
    .option('--metrics-listen <host:port|off>', 'Prometheus /metrics listen address', '127.0.0.1:9092')
    .option('--log-level <level>', 'pino log level', 'info')
    .option(
      '--reflector-port <port|off>',
      'run an endpoint reflector on this UDP port (a second one for NAT classification)',
      'off',
    )
    .option(
      '--kernel-forwarding <auto|on|off>',
      'let the kernel forward bound pairs (nftables netdev; needs CAP_NET_ADMIN); auto: when permitted',
      'auto',
    );

  let flags: RelayFlags;
  try {
    program.parse(argv, { from: 'user' });
    flags = program.opts<RelayFlags>();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    throw err;
  }
  let config: ReturnType<typeof configFromFlags>;
  try {
    config = configFromFlags(flags, io.env);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.err(`trellis-relay: ${err.message}`);
    return EXIT_USAGE;
  }

  const log = createLogger(flags.logLevel);
  let service: Awaited<ReturnType<typeof startRelayService>>;
  try {
    service = await startRelayService(config, log);
  } catch (err) {
    io.err(`trellis-relay: cannot start: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT_FATAL;
  }
  const tcp = service.tcp ? ` tcp ${service.tcp.info.url} fingerprint ${service.tcp.info.fingerprint}` : '';
  io.out(
    `trellis-relay ready ${config.name} udp ${config.publicAddress} ports ${config.ports.first}-${config.ports.last}${tcp}`,
  );
  const outcome = await Promise.race([
    io.stopSignal().then((signal) => ({ signal })),
    service.fatal.then((error) => ({ error })),
  ]);
  await service.close();
  if ('error' in outcome) {
    log.fatal({ err: outcome.error.message }, 'broker refused this relay; exiting');
    io.err(`trellis-relay: ${outcome.error.message}; check --token / TRELLIS_RELAY_TOKEN`);
    return EXIT_FATAL;
  }
  log.info({ signal: outcome.signal }, 'stopped');
  return 0;
}
