import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readPowerShellJson } from '../platform/powershell';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { ClientGate } from './ipc-client';
import type { ConnectionGate, GateSession } from './ipc-server';

/** The daemon's control pipe on Windows (`--socket` may name another). */
export const WINDOWS_PIPE_PATH = '\\\\.\\pipe\\trellisd';
/** Under the state directory: readable by SYSTEM, Administrators and the signed-in user only. */
export const PIPE_AUTH_DIR = 'ipc';
export const PIPE_KEY_FILE = 'pipe-key';
export const PIPE_AUTH_VERSION = 'trellis-pipe-1';
/** Well-known SIDs, so the ACL does not depend on the system's language. */
export const SID_SYSTEM = 'S-1-5-18';
export const SID_ADMINISTRATORS = 'S-1-5-32-544';
const SID_RE = /^S-1-\d{1,14}(-\d{1,10}){1,15}$/;
const NONCE_RE = /^[0-9a-f]{64}$/;
const PROOF_RE = /^[0-9a-f]{64}$/;

/**
 * icacls for the key's directory: inherited entries dropped, full control for SYSTEM and
 * Administrators, read for the signed-in user (none signed in: nobody else).
 */
export function keyDirAclArgs(dir: string, userSid: string | null): string[] {
  const grants = [`*${SID_SYSTEM}:(OI)(CI)F`, `*${SID_ADMINISTRATORS}:(OI)(CI)F`];
  if (userSid !== null) grants.push(`*${checkSid(userSid)}:(OI)(CI)RX`);
  return [dir, '/inheritance:r', '/grant:r', ...grants];
}

function checkSid(sid: string): string {
  if (!SID_RE.test(sid)) throw new Error(`not a SID: ${JSON.stringify(sid)}`);
  return sid;
}

/** The console session's user as a SID, or null when nobody is signed in. */
export async function signedInUserSid(runner: CommandRunner): Promise<string | null> {
  const r = await readPowerShellJson<{ user: string; sid: string }>(
    runner,
    [
      '$u = (Get-CimInstance -ClassName Win32_ComputerSystem).UserName',
      "if (-not $u) { 'null'; exit 0 }",
      '$sid = (New-Object System.Security.Principal.NTAccount($u)).Translate([System.Security.Principal.SecurityIdentifier]).Value',
      'ConvertTo-Json -Compress -InputObject ([pscustomobject]@{ user = $u; sid = $sid })',
    ].join('\n'),
  );
  return r ? checkSid(r.sid) : null;
}

/**
 * The pipe's access check. Node cannot put an ACL on a named pipe, so the pipe is open to all and
 * a client must prove it can read a key only SYSTEM, Administrators and the signed-in user can
 * read (a fresh one per daemon start and per user change). Proofs are HMACs over both sides'
 * nonces, both ways: the key never crosses the pipe, and a program squatting the pipe name learns
 * nothing and cannot pass for the daemon (the CLI sends no request to it).
 */
export class PipeAuthority {
  private key: Buffer | null = null;
  private user: string | null | undefined = undefined;

  constructor(
    private readonly stateDir: string,
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    private readonly findUser: () => Promise<string | null> = () => signedInUserSid(runner),
  ) {}

  /** A new key readable by that user (and SYSTEM and Administrators). */
  async grant(userSid: string | null): Promise<void> {
    const dir = join(this.stateDir, PIPE_AUTH_DIR);
    // Made anew: no entry for an earlier user survives, and nothing was planted in it.
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await runChecked(this.runner, 'icacls', keyDirAclArgs(dir, userSid));
    const key = randomBytes(32);
    // Written only once the ACL is in place; `wx`: never into a file someone else made.
    await writeFile(join(dir, PIPE_KEY_FILE), `${key.toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
    this.key = key;
    this.user = userSid;
    this.log.info({ user: userSid ?? 'none' }, 'control pipe key made');
  }

  /** Grants the signed-in user when it changed (or on the first call). */
  async refresh(): Promise<void> {
    const user = await this.findUser();
    if (user !== this.user || this.key === null) await this.grant(user);
  }

  /**
   * Refreshes every interval (a sign-in, a user switch); returns a stop function. Each check is
   * one PowerShell run (a few hundred ms of CPU), hence not more often.
   */
  follow(intervalMs = 30_000): () => void {
    const timer = setInterval(() => {
      this.refresh().catch((err: Error) =>
        this.log.warn({ err: err.message }, 'control pipe key not renewed'),
      );
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  gate(nonce: () => string = freshNonce): ConnectionGate {
    return serverGate(() => this.key, nonce);
  }
}

/**
 * For the daemon: the key for whoever is signed in now, followed as that changes. Pass `gate` to
 * the IpcServer listening on the pipe; `stop` when it closes.
 */
export async function startPipeAuthority(
  stateDir: string,
  runner: CommandRunner,
  log: Logger,
): Promise<{ gate: ConnectionGate; stop: () => void }> {
  const authority = new PipeAuthority(stateDir, runner, log);
  await authority.refresh();
  return { gate: authority.gate(), stop: authority.follow() };
}

/** The server's side: hello → challenge with its proof → the client's proof → requests. */
export function serverGate(key: () => Buffer | null, nonce: () => string = freshNonce): ConnectionGate {
  return {
    open(): GateSession {
      let clientNonce: string | null = null;
      let serverNonce = '';
      const refuse = (error: string) => ({ reply: { ok: false, error }, next: 'refuse' as const });
      return {
        take(line) {
          const msg = parseAuth(line);
          const k = key();
          if (!msg || k === null) return refuse('trellisd wants the control pipe handshake first');
          if (clientNonce === null) {
            if (!msg.nonce || !NONCE_RE.test(msg.nonce)) return refuse('bad handshake');
            clientNonce = msg.nonce;
            serverNonce = nonce();
            const proof = hmac(k, 'server', clientNonce, serverNonce);
            return { reply: { pipeAuth: PIPE_AUTH_VERSION, nonce: serverNonce, proof }, next: 'wait' };
          }
          const want = Buffer.from(hmac(k, 'client', serverNonce, clientNonce), 'hex');
          const got = msg.proof && PROOF_RE.test(msg.proof) ? Buffer.from(msg.proof, 'hex') : Buffer.alloc(0);
          if (got.length !== want.length || !timingSafeEqual(got, want)) {
            return refuse('not allowed: only Administrators and the signed-in user may control trellisd');
          }
          return { next: 'pass' };
        },
      };
    },
  };
}

/** The client's side, with the key it read. */
export function clientGate(key: Buffer, nonce: () => string = freshNonce): ClientGate {
  const clientNonce = nonce();
  return {
    hello: () => JSON.stringify({ pipeAuth: PIPE_AUTH_VERSION, nonce: clientNonce }),
    answer(line) {
      const msg = parseAuth(line);
      if (!msg?.nonce || !NONCE_RE.test(msg.nonce) || !msg.proof || !PROOF_RE.test(msg.proof)) {
        const error = (safeJson(line) as { error?: unknown } | null)?.error;
        throw new Error(typeof error === 'string' ? error : 'the control pipe did not answer the handshake');
      }
      const want = Buffer.from(hmac(key, 'server', clientNonce, msg.nonce), 'hex');
      if (!timingSafeEqual(Buffer.from(msg.proof, 'hex'), want)) {
        throw new Error('the program on the control pipe is not trellisd (it does not know the key)');
      }
      return JSON.stringify({
        pipeAuth: PIPE_AUTH_VERSION,
        proof: hmac(key, 'client', msg.nonce, clientNonce),
      });
    },
  };
}

/** The CLI's gate: reads the key the daemon made (only allowed users can). */
export async function loadClientGate(stateDir: string): Promise<ClientGate> {
  const file = join(stateDir, PIPE_AUTH_DIR, PIPE_KEY_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new Error(`cannot read ${file}: run trellis as an Administrator or as the signed-in user`);
    }
    throw new Error(`cannot read ${file} (is trellisd running?): ${(err as Error).message}`);
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} does not hold a key`);
  return clientGate(Buffer.from(hex, 'hex'));
}

function hmac(key: Buffer, role: 'server' | 'client', first: string, second: string): string {
  return createHmac('sha256', key).update(`${PIPE_AUTH_VERSION}\n${role}\n${first}\n${second}`).digest('hex');
}

function freshNonce(): string {
  return randomBytes(32).toString('hex');
}

function parseAuth(line: string): { nonce?: string; proof?: string } | null {
  const j = safeJson(line) as { pipeAuth?: unknown; nonce?: unknown; proof?: unknown } | null;
  if (!j || j.pipeAuth !== PIPE_AUTH_VERSION) return null;
  return {
    ...(typeof j.nonce === 'string' ? { nonce: j.nonce } : {}),
    ...(typeof j.proof === 'string' ? { proof: j.proof } : {}),
  };
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return null;
  }
}
