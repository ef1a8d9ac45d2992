import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { SID_ADMINISTRATORS, SID_SYSTEM } from '../ipc/pipe-auth-windows';
import { type CommandRunner, runChecked } from '../util/command-runner';
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

/** The SIDs the directory's access entries name, numeric whatever the system's language. */
export function aclSidsScript(dir: string): string {
  return [
    `$acl = Get-Acl -LiteralPath ${psString(dir)}`,
    '$s = @($acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier]) | ForEach-Object { $_.IdentityReference.Value } | Sort-Object -Unique)',
    'ConvertTo-Json -Compress -InputObject $s',
  ].join('\n');
}

/**
 * Windows ignores mode 0700: a directory made under ProgramData inherits read access for Users,
 * and the WireGuard private key is written into it. Run at start, before any key is written:
 * owner Administrators, inheritance off, SYSTEM and Administrators only. Entries for anyone else
 * (someone who made the directory first could have granted themselves) are removed. The control
 * pipe's key directory below it gets its own ACL later (pipe-auth-windows.ts).
 */
export async function lockWindowsStateDir(dir: string, runner: CommandRunner, log: Logger): Promise<void> {
  await mkdir(dir, { recursive: true });
  await runChecked(runner, 'icacls', stateDirOwnerArgs(dir));
  await runChecked(runner, 'icacls', stateDirAclArgs(dir));
  const sids = asArray(await readPowerShellJson<string[] | string>(runner, aclSidsScript(dir)));
  const foreign = sids.filter((sid) => !OURS.has(sid));
  if (foreign.length === 0) return;
  const bad = foreign.find((sid) => !SID_RE.test(sid));
  if (bad !== undefined) throw new Error(`the ACL of ${dir} names ${JSON.stringify(bad)}, not a SID`);
  log.warn({ dir, removed: foreign }, 'the state directory granted others access: removed');
  await runChecked(runner, 'icacls', [dir, '/remove', ...foreign.map((sid) => `*${sid}`)]);
}
