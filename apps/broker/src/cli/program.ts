import { resolve } from 'node:path';
import { DEFAULT_RESPONSE_LIMITS } from '@trellis/dns';
import type { AdminRequest } from '@trellis/proto';
import { DEFAULT_MAX_CONNECTIONS_PER_ADDRESS } from '@trellis/tls';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  DEFAULT_MAX_HOLD_MS,
  DEFAULT_MAX_PENDING_CONNECTIONS,
  HELD_PER_PENDING,
} from '../control/admission-gate';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_DNS_LISTEN,
  DEFAULT_LISTEN,
  DEFAULT_OFFLINE_GRACE_MS,
  DEFAULT_REFLECTOR_PORT,
  DEFAULT_ZONE,
} from '../defaults';
import { DEFAULT_DNS_TTL_SECONDS } from '../dns/start-dns';
import { parseDuration } from '../domain/setup-key-rules';
import { BROKER_VERSION } from '../version';
import { runAdminRequest } from './admin-client';
import { type CommonFlags, UsageError } from './cli-context';
import { type CliIo, renderResult } from './output';
import { addPolicyCommands } from './policy-commands';
import { serve } from './serve';

const processIo: CliIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  write: (t) => process.stdout.write(t),
};

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`expected a positive integer, got "${value}"`);
  return n;
}

/**
 * The `trellis-broker` command line. Returns the exit code; `serve` resolves only once the broker
 * has stopped (SIGINT/SIGTERM) unless `onServing` takes over the handle.
 */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('trellis-broker')
    .description('Trellis broker: enrollment, control channel and admin')
    .version(BROKER_VERSION)
    .exitOverride()
    // Options after a subcommand are the subcommand's (`policy get --version N` is not the program's).
    .enablePositionalOptions()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const dataDirOption = () =>
    new Option('--data-dir <dir>', 'data directory').env('TRELLIS_DATA_DIR').default(DEFAULT_DATA_DIR);
  const common = (cmd: Command) =>
    cmd
      .addOption(dataDirOption())
      .option('--json', 'print JSON')
      .addOption(new Option('--zone <zone>', 'DNS zone of device names').default(DEFAULT_ZONE));

  const call = (flags: CommonFlags, req: AdminRequest) =>
    runAdminRequest(
      {
        dataDir: resolve(flags.dataDir),
        databaseUrl: process.env.DATABASE_URL || undefined,
        zone: flags.zone,
      },
      req,
    );
  const admin = async (flags: CommonFlags, req: AdminRequest) => {
    const res = await call(flags, req);
    if (!res.ok) {
      io.err(`error: ${res.error}`);
      exitCode = 1;
      return;
    }
    io.out(flags.json ? JSON.stringify(res.result, null, 2) : renderResult(req.op, res.result, req));
  };

  program
    .command('serve')
    .description('run the broker (HTTPS API + control channel + admin socket)')
    .addOption(dataDirOption())
    .option('--listen <host:port>', 'address to listen on', DEFAULT_LISTEN)
    .option('--public-url <url>', 'URL devices use to reach the broker (added to the certificate)')
    .option('--tls-san <name...>', 'extra certificate subject alternative names', [])
    .option(
      '--tls-cert <file>',
      "PEM certificate to use instead of the generated one (with --plain-http: the proxy's, for the fingerprint devices and relays pin)",
    )
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option(
      '--proxy-protocol',
      "every connection starts with a PROXY protocol v2 header (HAProxy send-proxy-v2): its source is the client's address; connections without one are closed",
    )
    .option(
      '--plain-http',
      "listen without TLS, for a proxy in front that terminates it (needs --proxy-protocol and the proxy's https --public-url)",
    )
    .option('--zone <zone>', 'DNS zone of device names', DEFAULT_ZONE)
    .option('--log-level <level>', 'pino log level', 'info')
    .option(
      '--reflector-port <port>',
      'UDP port of the WireGuard endpoint reflector (0: none)',
      portNumber,
      DEFAULT_REFLECTOR_PORT,
    )
    .option('--reflector-host <ip>', 'IP agents send reflector traffic to (default: the public URL host)')
    .option('--reflector2 <host:port>', 'second reflector on another IP of this host (classifies NATs)')
    .option('--lease-renew-ms <ms>', 'how often this instance renews its lease (default 1000)', positiveInt)
    .option(
      '--lease-ms <ms>',
      'an instance not renewing for this long is taken over (default 3000)',
      positiveInt,
    )
    .option('--audit-max-age-days <days>', 'days audit events are kept (default 365)', positiveInt)
    .option(
      '--offline-grace-ms <ms>',
      `a device whose connection closed is marked offline this long after, unless it reconnected (0: at once; default ${DEFAULT_OFFLINE_GRACE_MS})`,
      wholeNumber,
    )
    .option(
      '--max-connections-per-address <n>',
      `concurrent connections one source address may hold (0: no cap; default ${DEFAULT_MAX_CONNECTIONS_PER_ADDRESS})`,
      wholeNumber,
    )
    .option(
      '--max-pending-connections <n>',
      `connections in their TLS handshake or awaiting their netmap beyond which new ones wait, unread, for a slot (up to ${DEFAULT_MAX_HOLD_MS / 1000} s and ${HELD_PER_PENDING} × this many; beyond, refused so their clients back off) (0: no limit; default ${DEFAULT_MAX_PENDING_CONNECTIONS})`,
      wholeNumber,
    )
    .option(
      '--dns-listen <host:port|off>',
      'authoritative DNS server for the zone (UDP and TCP)',
      DEFAULT_DNS_LISTEN,
    )
    .option('--dns-ttl <seconds>', 'TTL of the DNS records', positiveInt, DEFAULT_DNS_TTL_SECONDS)
    .option('--dns-ns <name...>', 'host names of the NS records (default: the public URL host)', [])
    .option(
      '--dns-rate-limit <n>',
      `UDP responses per second to one source network, /24 or /56 (0: no limit; default ${DEFAULT_RESPONSE_LIMITS.perSecond})`,
      wholeNumber,
      DEFAULT_RESPONSE_LIMITS.perSecond,
    )
    .option('--oidc-issuer <url>', 'dashboard sign-in with this OpenID Connect provider (its issuer URL)')
    .option('--oidc-client-id <id>', "the broker's client id at the provider")
    .option(
      '--oidc-client-secret-file <file>',
      'file holding the client secret (or env TRELLIS_OIDC_CLIENT_SECRET; never a flag, which ps would show)',
    )
    .option('--oidc-account <name>', 'account that users signing in with OIDC belong to or join', 'default')
    .option('--oidc-role <role>', 'role of the users OIDC sign-in creates: member or admin', 'member')
    .option('--oidc-name <name>', "name on the dashboard's sign-in button (default: the issuer's host)")
    .action(async (flags) => {
      const broker = await serve({ ...flags, dataDir: resolve(flags.dataDir) }, io);
      await new Promise<void>((done) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          broker.close().finally(done);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });

  const accounts = program.command('accounts').description('manage accounts');
  common(accounts.command('create <name>'))
    .description('create an account and its owner')
    .requiredOption('--owner-email <email>', 'email of the owner')
    .option('--password <password>', 'owner password (generated and shown once if absent)')
    .action((name: string, f) =>
      admin(f, { op: 'accounts.create', name, ownerEmail: f.ownerEmail, password: f.password }),
    );
  common(accounts.command('list'))
    .description('list accounts')
    .action((f) => admin(f, { op: 'accounts.list' }));
  common(accounts.command('reset-owner'))
    .description("give the account's owner a new password (shown once) and sign the owner out")
    .requiredOption('--account <name>', 'account name')
    .option('--password <password>', 'the new password (generated and shown once if absent)')
    .action((f) => admin(f, { op: 'accounts.resetOwner', account: f.account, password: f.password }));
  common(accounts.command('dns <account>'))
    .description("answer the account's device names to anyone, or only to its own devices")
    .addOption(new Option('--mesh-only', "only to the account's devices' addresses").conflicts('public'))
    .addOption(new Option('--public', 'to anyone (the default for a new account)'))
    .action((account: string, f) => {
      if (!f.meshOnly && !f.public) throw new UsageError('give --mesh-only or --public');
      return admin(f, { op: 'accounts.dns', account, meshOnly: f.meshOnly === true });
    });

  const users = program.command('users').description('manage users');
  common(users.command('create'))
    .description('create a user in an account')
    .requiredOption('--account <name>', 'account name')
    .requiredOption('--email <email>', 'email')
    .requiredOption('--role <role>', 'owner, admin or member')
    .option('--password <password>', 'password (generated and shown once if absent)')
    .action((f) =>
      admin(f, {
        op: 'users.create',
        account: f.account,
        email: f.email,
        role: f.role,
        password: f.password,
      }),
    );

  const keys = program.command('setup-keys').description('manage setup keys');
  common(keys.command('create'))
    .description('create a setup key (printed once)')
    .requiredOption('--account <name>', 'account name')
    .option('--name <name>', 'label', 'cli')
    .option('--reusable', 'allow more than one enrollment')
    .option('--expires <duration>', 'lifetime, e.g. 30m, 24h, 7d (default: never)')
    .option('--usage-limit <n>', 'maximum enrollments', positiveInt)
    .option('--tag <tag>', 'a tag (tag:NAME) for the devices it enrolls; repeatable', collect)
    .option('--cidr <block>', "a block of the policy's cidrs: the devices it enrolls get addresses there")
    .action((f) => {
      let expiresInSeconds: number | undefined;
      if (f.expires !== undefined) {
        const s = parseDuration(f.expires);
        if (s === null) throw new UsageError(`--expires must look like 30m, 24h or 7d, got "${f.expires}"`);
        expiresInSeconds = s;
      }
      return admin(f, {
        op: 'setupKeys.create',
        account: f.account,
        name: f.name,
        reusable: Boolean(f.reusable),
        expiresInSeconds,
        usageLimit: f.usageLimit,
        ...(f.tag !== undefined ? { tags: f.tag } : {}),
        ...(f.cidr !== undefined ? { cidr: f.cidr } : {}),
      });
    });
  common(keys.command('list'))
    .description('list setup keys')
    .requiredOption('--account <name>', 'account name')
    .action((f) => admin(f, { op: 'setupKeys.list', account: f.account }));
  common(keys.command('revoke <id>'))
    .description('revoke a setup key')
    .requiredOption('--account <name>', 'account name')
    .action((id: string, f) => admin(f, { op: 'setupKeys.revoke', account: f.account, id }));

  const devices = program.command('devices').description('manage devices');
  common(devices.command('list'))
    .description('list devices')
    .requiredOption('--account <name>', 'account name')
    .action((f) => admin(f, { op: 'devices.list', account: f.account }));
  common(devices.command('remove <id-or-name>'))
    .description('remove a device (its peers drop it at once)')
    .requiredOption('--account <name>', 'account name')
    .action((device: string, f) => admin(f, { op: 'devices.remove', account: f.account, device }));
  common(devices.command('tag <id-or-name> [tags...]'))
    .description("set a device's tags (tag:NAME, declared in the policy's tagOwners); none clears them")
    .requiredOption('--account <name>', 'account name')
    .action((device: string, tags: string[], f) =>
      admin(f, { op: 'devices.tag', account: f.account, device, tags }),
    );
  common(devices.command('rename <id-or-name> <new-name>'))
    .description('give a device another name (its DNS name follows on every broker instance)')
    .requiredOption('--account <name>', 'account name')
    .action((device: string, name: string, f) =>
      admin(f, { op: 'devices.rename', account: f.account, device, name }),
    );
  common(devices.command('add-virtual <name>'))
    .description(
      'register a LAN host that cannot run Trellis (printer, camera) behind a gateway device: ' +
        'it gets its own mesh address and name, and the gateway forwards to it',
    )
    .requiredOption('--account <name>', 'account name')
    .requiredOption('--lan <address>', 'its IPv4 address on the gateway LAN')
    .requiredOption('--gateway <id-or-name>', 'the device that forwards to it')
    .option('--tag <tag>', 'a tag (tag:NAME, declared in the policy tagOwners); repeatable', collect)
    .action((name: string, f) =>
      admin(f, {
        op: 'devices.addVirtual',
        account: f.account,
        device: {
          name,
          lanAddress: f.lan,
          gateway: f.gateway,
          ...(f.tag !== undefined ? { tags: f.tag } : {}),
        },
      }),
    );
  common(devices.command('rekey <id-or-name> <public-key>'))
    .description(
      'give a device that lost its key a new one (its peers accept it and show the re-key); ' +
        'the device then enrolls again with that key and keeps its name and address',
    )
    .requiredOption('--account <name>', 'account name')
    .action((device: string, publicKey: string, f) =>
      admin(f, { op: 'devices.rekey', account: f.account, device, publicKey }),
    );

  const routes = program.command('routes').description("gateways' subnet routes and exit nodes");
  common(routes.command('list'))
    .description('list advertised and approved routes (PRIMARY: the gateway clients use)')
    .requiredOption('--account <name>', 'account name')
    .action((f) => admin(f, { op: 'routes.list', account: f.account }));
  for (const op of ['approve', 'unapprove'] as const) {
    common(routes.command(`${op} <id-or-name> <prefixes...>`))
      .description(`${op} routes of a device (0.0.0.0/0: its exit node)`)
      .requiredOption('--account <name>', 'account name')
      .action((device: string, prefixes: string[], f) =>
        admin(f, { op: `routes.${op}`, account: f.account, device, prefixes }),
      );
  }

  addPolicyCommands(program, { io, common, call, admin, setExitCode: (code) => (exitCode = code) });

  const relayTokens = program.command('relay-token').description('manage relay tokens');
  common(relayTokens.command('create <name>'))
    .description('create a relay token (printed once); without --account a shared relay')
    .option('--account <name>', 'account whose private relay this is')
    .action((name: string, f) => admin(f, { op: 'relayTokens.create', name, account: f.account }));
  common(relayTokens.command('list'))
    .description("list relay tokens (all, or one account's)")
    .option('--account <name>', 'account name')
    .action((f) => admin(f, { op: 'relayTokens.list', account: f.account }));
  common(relayTokens.command('revoke <id>'))
    .description('revoke a relay token (its relay is disconnected)')
    .action((id: string, f) => admin(f, { op: 'relayTokens.revoke', id }));

  const relays = program.command('relays').description('relays');
  common(relays.command('list'))
    .description('list relays and whether they are connected')
    .action((f) => admin(f, { op: 'relays.list' }));

  const instances = program.command('instances').description('broker instances sharing the database');
  common(instances.command('list'))
    .description('list broker instances and their leases (LIVE false: dead, about to be taken over)')
    .action((f) => admin(f, { op: 'instances.list' }));

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    io.err(`error: ${e?.message ?? String(err)}`);
    return 1;
  }
}

function wholeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
}

function portNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number');
  return n;
}
