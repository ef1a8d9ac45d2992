#!/usr/bin/env node
import {
  DEFAULT_LOCAL_UI_TOKEN_FILE,
  ErrorResponse,
  type IpcRequest,
  OkResponse,
  RotateKeyResponse,
  StatusResponse,
  UpResponse,
} from '@trellis/proto';
import { Command, Option } from 'commander';
import { formatNetcheck } from './cli/format-netcheck';
import { formatSignIn } from './cli/format-sign-in';
import { formatStatus } from './cli/format-status';
import { addGatewayFlags, type GatewayFlags, prefsFromFlags } from './cli/gateway-flags';
import { describePath, findPeer, meshPing } from './cli/mesh-ping';
import { DEFAULT_STATE_DIR } from './daemon-options';
import { ipcCall } from './ipc/ipc-client';
import { isNamedPipe } from './ipc/ipc-server';
import { loadClientGate } from './ipc/pipe-auth-windows';
import { defaultSocket } from './platform/default-paths';
import { trustFromFlags } from './trust/broker-trust';
import { parseBrokerUrls } from './trust/broker-url';
import { readUiLink } from './ui/ui-token';
import { keyFingerprint } from './wireguard/keys';

/** `trellis`: talks to trellisd over its local socket. Exit 0 on success, 1 on any error. */
const program = new Command('trellis')
  .description('Trellis mesh client')
  .addOption(
    new Option('--state-dir <dir>', 'daemon state directory')
      .env('TRELLIS_STATE_DIR')
      .default(DEFAULT_STATE_DIR),
  )
  .addOption(
    new Option(
      '--socket <path>',
      'daemon socket (default <state-dir>/trellisd.sock; on Windows \\\\.\\pipe\\trellisd)',
    ).env('TRELLIS_SOCKET'),
  );

async function call(req: IpcRequest, timeoutMs?: number): Promise<unknown> {
  const o = program.opts<{ stateDir: string; socket?: string }>();
  const path = o.socket ?? defaultSocket(o.stateDir);
  // Windows' pipe is open to all users: the CLI proves it may use it with the daemon's key.
  const gate = isNamedPipe(path) ? await loadClientGate(o.stateDir) : undefined;
  const res = await ipcCall(path, req, timeoutMs, gate);
  const err = ErrorResponse.safeParse(res);
  if (err.success) throw new Error(err.data.error);
  return res;
}

/** Collects a repeated flag's values. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

addGatewayFlags(
  program.command('up').description('join the mesh: signs in (or enrolls with --setup-key) the first time'),
)
  .option(
    '--broker <url>',
    'broker URL, https://HOST:PORT; repeat it or give a comma-separated list for several instances',
    collect,
  )
  .option('--setup-key <key>', 'setup key from the broker admin')
  .option('--name <name>', 'wanted device name')
  .option('--no-qr', 'do not print a QR code of the sign-in page')
  .option('--ca-file <file>', 'PEM CA (or the broker certificate) to trust; may be repeated', collect)
  .option(
    '--fingerprint <sha256>',
    "pin the broker certificate's SHA-256 (hex, colons optional); repeat it for instances with their own",
    collect,
  )
  .action(
    async (
      o: {
        broker?: string[];
        setupKey?: string;
        name?: string;
        caFile?: string[];
        fingerprint?: string[];
        qr: boolean;
      } & GatewayFlags,
    ) => {
      const req: IpcRequest = { op: 'up' };
      const prefs = prefsFromFlags(o);
      if (prefs) req.prefs = prefs;
      if (o.broker) req.brokers = parseBrokerUrls(o.broker);
      if (o.setupKey) req.setupKey = o.setupKey;
      if (o.name) req.name = o.name;
      const trust = trustFromFlags(o.caFile ?? [], o.fingerprint ?? [], process.cwd());
      if (trust) req.trust = trust;
      const res = UpResponse.parse(await call(req));
      if (res.signIn) {
        process.stdout.write(formatSignIn(res.signIn, o.qr));
        // The daemon polls; this only waits for it, up to the code's expiry (Ctrl-C leaves it waiting).
        const waitMs = Date.parse(res.signIn.expiresAt) - Date.now() + 30_000;
        const done = OkResponse.parse(await call({ op: 'wait-sign-in' }, waitMs));
        process.stdout.write(`${done.message ?? 'up'}\n`);
        return;
      }
      process.stdout.write(`${res.message ?? 'up'}\n`);
    },
  );

addGatewayFlags(
  program.command('set').description('change gateway settings (subnet routes, exit node); applied at once'),
).action(async (o: GatewayFlags) => {
  const prefs = prefsFromFlags(o);
  if (!prefs) throw new Error('nothing to set: give at least one option (see `trellis set --help`)');
  const res = OkResponse.parse(await call({ op: 'set', prefs }));
  process.stdout.write(`${res.message ?? 'set'}\n`);
});

program
  .command('down')
  .description('leave the mesh (keeps the enrollment)')
  .action(async () => {
    const res = OkResponse.parse(await call({ op: 'down' }));
    process.stdout.write(`${res.message ?? 'down'}\n`);
  });

program
  .command('rotate-key')
  .description("replace this device's WireGuard key with a new one, signed by the current key")
  .action(async () => {
    const res = RotateKeyResponse.parse(await call({ op: 'rotate-key' }));
    process.stdout.write(
      `key rotated\n  old: ${res.previousKey} (${keyFingerprint(res.previousKey)})\n` +
        `  new: ${res.publicKey} (${keyFingerprint(res.publicKey)})\n`,
    );
  });

program
  .command('status')
  .description('show this device and its peers')
  .option('--json', 'print the raw StatusResponse')
  .action(async (o: { json?: boolean }) => {
    const res = StatusResponse.parse(await call({ op: 'status' }));
    process.stdout.write(o.json ? `${JSON.stringify(res, null, 2)}\n` : formatStatus(res));
  });

program
  .command('netcheck')
  .description("this device's NAT: mapping type, reflexive addresses, port mapping, broker latency")
  .action(async () => {
    const res = StatusResponse.parse(await call({ op: 'status' }));
    process.stdout.write(formatNetcheck(res));
  });

program
  .command('ping <peer>')
  .description('ping a peer (name or address) over the mesh; each reply shows the path and latency')
  .option('-c, --count <n>', 'number of pings', '4')
  .action(async (query: string, o: { count: string }) => {
    const count = Number(o.count);
    if (!Number.isInteger(count) || count < 1) throw new Error('--count must be a positive integer');
    const status = async () => StatusResponse.parse(await call({ op: 'status' }));
    const peer = findPeer(await status(), query);
    if (!peer) throw new Error(`no peer "${query}" in the netmap`);
    process.stdout.write(`PING ${peer.name} (${peer.address}) over the mesh\n`);
    const replies = await meshPing(
      peer.address,
      count,
      async () => describePath(findPeer(await status(), peer.id)),
      (line) => process.stdout.write(`${line}\n`),
    );
    process.stdout.write(`${replies}/${count} replies\n`);
    if (replies === 0) process.exitCode = 1;
  });

program
  .command('ui')
  .description("print the local web UI's address, token included (trellisd --ui-listen; for --operator)")
  .addOption(
    new Option('--token-file <path>', "trellisd's UI token file")
      .env('TRELLIS_UI_TOKEN_FILE')
      .default(DEFAULT_LOCAL_UI_TOKEN_FILE),
  )
  .action(async (o: { tokenFile: string }) => {
    // Printed, not handed to a browser command: another user could read a command line in /proc.
    process.stdout.write(`${await readUiLink(o.tokenFile)}\n`);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`trellis: ${err.message}\n`);
  process.exit(1);
});
