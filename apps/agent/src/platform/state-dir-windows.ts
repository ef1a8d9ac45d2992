import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { SID_ADMINISTRATORS, SID_SYSTEM } from '../ipc/pipe-auth-windows';
import { type CommandRunner, runChecked } from '../util/command-runner';
import { UserError } from '../util/user-error';
import { asArray, psString, readPowerShellJson } from './powershell';

const SID_RE = /^S-1-\d{1,14}(-\d{1,10}){1,15}$/;
const OURS: ReadonlySet<string> = new Set([SID_SYSTEM, SID_ADMINISTRATORS]);

/** icacls: the directory belongs to Administrators (whoever made it loses the owner's rights). */
export function stateDirOwnerArgs(dir: string): string[] {
  return [dir, '/setowner', `*${SID_ADMINISTRATORS}`];
}

/** icacls: nothing inherited from ProgramData (where Users may read), full control for SYSTEM and Administrators. */
export function stateDirAclArgs(dir: string): string[] {
  return [dir, '/inheritance:r', '/grant:r', `*${SID_SYSTEM}:(OI)(CI)F`, `*${SID_ADMINISTRATORS}:(OI)(CI)F`];
}

/** The directory's owner, whether it is a reparse point, and the SIDs its allow and deny entries name. */
export interface StateDirAcl {
  owner: string;
  reparse: boolean;
  allow: string[];
  deny: string[];
}

/** Reads StateDirAcl; SIDs numeric whatever the system's language. */
export function stateDirAclScript(dir: string): string {
  const sids = (type: 'Allow' | 'Deny') =>
    `@($rules | Where-Object { $_.AccessControlType -eq '${type}' } | ForEach-Object { $_.IdentityReference.Value } | Sort-Object -Unique)`;
  return [
    `$acl = Get-Acl -LiteralPath ${psString(dir)}`,
    `$item = Get-Item -LiteralPath ${psString(dir)} -Force`,
    '$rules = @($acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier]))',
    '$o = [ordered]@{',
    '  owner = $acl.GetOwner([System.Security.Principal.SecurityIdentifier]).Value',
    '  reparse = [bool]($item.Attributes -band [System.IO.FileAttributes]::ReparsePoint)',
    `  allow = ${sids('Allow')}`,
    `  deny = ${sids('Deny')}`,
    '}',
    'ConvertTo-Json -Compress -InputObject $o',
  ].join('\n');
}

async function readStateDirAcl(runner: CommandRunner, dir: string): Promise<StateDirAcl> {
  const read = await readPowerShellJson<Partial<Record<keyof StateDirAcl, unknown>>>(
    runner,
    stateDirAclScript(dir),
  );
  const sids = (v: unknown) => asArray(v as string[] | string | null).map(String);
  if (typeof read?.owner !== 'string' || typeof read.reparse !== 'boolean') {
    throw new Error(`could not read the owner of ${dir}: ${JSON.stringify(read)}`);
  }
  return { owner: read.owner, reparse: read.reparse, allow: sids(read.allow), deny: sids(read.deny) };
}

/**
 * A directory someone else made first keeps its owner's rights, and files they put in it keep
 * theirs, through any change to the directory's ACL; a reparse point sends the ACL and the key
 * elsewhere. Refused, as install-service.ps1 refuses it.
 */
function refuseUntrusted(dir: string, acl: StateDirAcl): void {
  if (acl.reparse) {
    throw new UserError(
      `${dir} is a link (reparse point), not a directory: remove it and start trellisd again`,
    );
  }
  if (!OURS.has(acl.owner)) {
    throw new UserError(
      `${dir} belongs to ${acl.owner}, not to SYSTEM or Administrators (someone else made it first): remove it and what is in it, then start trellisd again`,
    );
  }
}

function checkSids(dir: string, sids: readonly string[]): void {
  const bad = sids.find((sid) => !SID_RE.test(sid));
  if (bad !== undefined) throw new Error(`the ACL of ${dir} names ${JSON.stringify(bad)}, not a SID`);
}

/**
 * Windows ignores mode 0700: a directory made under ProgramData inherits read access for Users,
 * and the WireGuard private key is written into it. Run at start, before any key is written: a
 * directory that was already there must be SYSTEM's or Administrators' and not a reparse point;
 * then owner Administrators, inheritance off, SYSTEM and Administrators only. Entries for anyone
 * else are removed, and so are entries denying SYSTEM or Administrators (they would lock trellisd
 * out). The control pipe's key directory below it gets its own ACL later (pipe-auth-windows.ts).
 */
export async function lockWindowsStateDir(dir: string, runner: CommandRunner, log: Logger): Promise<void> {
  // mkdir returns the first directory it made, undefined when the directory was already there.
  const made = (await mkdir(dir, { recursive: true })) !== undefined;
  if (!made) refuseUntrusted(dir, await readStateDirAcl(runner, dir));
  await runChecked(runner, 'icacls', stateDirOwnerArgs(dir));
  await runChecked(runner, 'icacls', stateDirAclArgs(dir));
  const acl = await readStateDirAcl(runner, dir);
  const foreign = [...new Set([...acl.allow, ...acl.deny])].filter((sid) => !OURS.has(sid)).sort();
  const deniedOurs = acl.deny.filter((sid) => OURS.has(sid));
  checkSids(dir, foreign);
  if (foreign.length > 0) {
    log.warn({ dir, removed: foreign }, 'the state directory granted others access: removed');
    await runChecked(runner, 'icacls', [dir, '/remove', ...foreign.map((sid) => `*${sid}`)]);
  }
  if (deniedOurs.length > 0) {
    log.warn(
      { dir, removed: deniedOurs },
      'the state directory denied SYSTEM or Administrators access: removed',
    );
    await runChecked(runner, 'icacls', [dir, '/remove:d', ...deniedOurs.map((sid) => `*${sid}`)]);
  }
}
