import { isIPv4, isIPv6 } from 'node:net';
import { type CommandRunner, runChecked } from '../util/command-runner';

/** Windows PowerShell 5.1: part of every Windows 10/11 and Server 2016+ (System32 is on PATH). */
export const POWERSHELL = 'powershell.exe';

/** Stops at the first failure (exit 1 with the error on stderr) and keeps progress bars off stderr. */
const PRELUDE = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n";

/**
 * Most commands of one script: the base64 of UTF-16 is 8/3 of the script and a Windows command
 * line holds 32,767 characters, so long change lists go in several runs.
 */
const LINES_PER_SCRIPT = 40;

/**
 * The argv of one script. `-EncodedCommand` (base64 of UTF-16LE) and not `-Command`: powershell.exe
 * re-parses a `-Command` string and drops its double quotes, so nothing typed into it would be
 * what runs. The script itself quotes every value it is given (psString).
 */
export function psArgs(script: string): string[] {
  const encoded = Buffer.from(PRELUDE + script, 'utf16le').toString('base64');
  return [
    '-NoLogo',
    '-NoProfile',
    '-NonInteractive',
    '-ExecutionPolicy',
    'Bypass',
    '-EncodedCommand',
    encoded,
  ];
}

/** The script inside psArgs' argv (without the prelude), or null: for fakes and golden files. */
export function scriptOf(args: readonly string[]): string | null {
  const at = args.indexOf('-EncodedCommand');
  const encoded = at >= 0 ? args[at + 1] : undefined;
  if (encoded === undefined) return null;
  const script = Buffer.from(encoded, 'base64').toString('utf16le');
  return script.startsWith(PRELUDE) ? script.slice(PRELUDE.length) : script;
}

/** Runs a script; throws with its stderr when it fails. Returns stdout. */
export function runPowerShell(runner: CommandRunner, script: string): Promise<string> {
  return runChecked(runner, POWERSHELL, psArgs(script));
}

/** Runs a script that ends in `ConvertTo-Json` and parses what it printed (empty: null). */
export async function readPowerShellJson<T>(runner: CommandRunner, script: string): Promise<T | null> {
  const out = (await runPowerShell(runner, script)).trim();
  if (out === '') return null;
  try {
    return JSON.parse(out) as T;
  } catch {
    throw new Error(`PowerShell printed something that is not JSON: ${out.slice(0, 200)}`);
  }
}

/** Runs commands in as few scripts as fit on a command line; nothing when there are none. */
export async function runPowerShellLines(runner: CommandRunner, lines: readonly string[]): Promise<void> {
  for (let i = 0; i < lines.length; i += LINES_PER_SCRIPT) {
    await runPowerShell(runner, `${lines.slice(i, i + LINES_PER_SCRIPT).join('\n')}\n`);
  }
}

/**
 * A PowerShell single-quoted string literal: nothing in it is expanded, and a quote is written
 * twice. PowerShell also takes the typographic quotes U+2018-U+201B as single quotes, so those are
 * doubled too. Control characters (a newline would end the command) are refused.
 */
export function psString(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new Error(`refusing a control character in a PowerShell argument: ${JSON.stringify(value)}`);
  }
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/** Windows adapter names the agent may configure: the WireGuard adapter is named by the agent. */
const ALIAS_RE = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/;

export function checkAlias(alias: string): string {
  if (!ALIAS_RE.test(alias)) throw new Error(`refusing interface name ${JSON.stringify(alias)}`);
  return alias;
}

export function checkAddress(address: string): string {
  if (!isIPv4(address) && !(isIPv6(address) && !address.includes('%'))) {
    throw new Error(`not an IP address: ${JSON.stringify(address)}`);
  }
  return address;
}

/** An IPv4 or IPv6 prefix `ADDR/LEN`, length in range. */
export function checkPrefix(prefix: string): string {
  const [address = '', len = '', ...more] = prefix.split('/');
  const max = isIPv4(address) ? 32 : isIPv6(address) ? 128 : -1;
  const n = /^\d{1,3}$/.test(len) ? Number(len) : -1;
  if (more.length > 0 || max < 0 || n < 0 || n > max || address.includes('%')) {
    throw new Error(`not an IP prefix: ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/** `@(...)` of a JSON value that may be one object, an array or null (ConvertTo-Json flattens). */
export function asArray<T>(value: T | T[] | null | undefined): T[] {
  if (value === null || value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
