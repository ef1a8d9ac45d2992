import { open } from 'node:fs/promises';
import {
  type AdminRequest,
  MAX_POLICY_BYTES,
  type PolicyApplyResult,
  type PolicyCheckResult,
  type PolicyDocument,
  type PolicyPlanResult,
} from '@trellis/proto';
import { type Command, InvalidArgumentError } from 'commander';
import { type CliContext, type CommonFlags, UsageError } from './cli-context';
import {
  formatApply,
  formatCheck,
  formatPlan,
  issueLines,
  plural,
  policyTextForOut,
  rejectionIssues,
} from './policy-output';

interface AccountFlags extends CommonFlags {
  account: string;
}

/** A policy read from a file or standard input; `label` is what its issues name as the file. */
export interface PolicyInput {
  label: string;
  text: string;
}

function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return (err as Error | undefined)?.message ?? String(err);
}

/** Reads at most MAX_POLICY_BYTES, never the rest of a larger input. */
async function readBounded(source: AsyncIterable<Buffer | string>, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > MAX_POLICY_BYTES) {
      throw new UsageError(`${what} is larger than ${MAX_POLICY_BYTES} bytes, the most a policy may be`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/**
 * The policy in FILE (`-`: standard input), kept byte for byte (a byte order mark too). Every
 * problem is a one-line UsageError naming the file.
 */
export async function readPolicyInput(file: string, stdin: NodeJS.ReadableStream): Promise<PolicyInput> {
  let bytes: Buffer;
  let label: string;
  if (file === '-') {
    label = '<stdin>';
    bytes = await readBounded(stdin as AsyncIterable<Buffer | string>, 'the policy on standard input');
  } else {
    label = file;
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${fileProblem(err)}`);
    }
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw new UsageError(`cannot read ${file}: is a directory`);
      if (stat.isFile() && stat.size > MAX_POLICY_BYTES) {
        throw new UsageError(
          `${file} is ${stat.size} bytes, larger than ${MAX_POLICY_BYTES} bytes, the most a policy may be`,
        );
      }
      // Streamed with the same bound: a pipe (`<(…)`) has no size, a file may grow meanwhile.
      bytes = await readBounded(handle.createReadStream({ autoClose: false }), file);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`cannot read ${file}: ${fileProblem(err)}`);
    } finally {
      await handle.close();
    }
  }
  if (bytes.length === 0) throw new UsageError(`${label} is empty`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new UsageError(`${label} is not UTF-8 text`);
  }
  return { label, text };
}

function versionNumber(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError('must be a version number (0, 1, 2, …)');
  return Number(value);
}

function positiveVersion(value: string): number {
  const n = versionNumber(value);
  if (n === 0) throw new InvalidArgumentError('must be a version number from 1 (version 0 is the default)');
  return n;
}

/**
 * `policy get|check|plan|apply|history|rollback|explain`: the account's access policy through the
 * admin socket (or the database). Check and plan print their findings and exit 1 when the policy is
 * invalid; apply and rollback of an invalid policy print the located errors on stderr and exit 1.
 */
export function addPolicyCommands(program: Command, ctx: CliContext): void {
  const { io, common } = ctx;
  const policy = program.command('policy').description("an account's access policy (JSON with comments)");
  const withAccount = (cmd: Command) => common(cmd).requiredOption('--account <name>', 'account name');
  const read = (file: string) => readPolicyInput(file, io.stdin ?? process.stdin);

  /** Prints `error: …` with exit code 1; for an invalid policy, its errors located in `label`. */
  const failed = (flags: CommonFlags, label: string, res: { status: number; error: string }) => {
    ctx.setExitCode(1);
    const issues = res.status === 422 ? rejectionIssues(res.error) : null;
    if (!issues) {
      io.err(`error: ${res.error}`);
      return;
    }
    if (flags.json) {
      io.out(JSON.stringify({ error: 'invalid_policy', message: res.error, errors: issues }, null, 2));
    }
    for (const line of issueLines(label, issues)) io.err(line);
    io.err(`error: the policy is invalid (${plural(issues.length, 'error')}); nothing was applied`);
  };

  /** Sends `req`; prints the JSON or `human(result)`, or the failure. Returns the result. */
  const run = async <T>(
    flags: CommonFlags,
    req: AdminRequest,
    label: string,
    human: (result: T) => string,
  ): Promise<T | undefined> => {
    const res = await ctx.call(flags, req);
    if (!res.ok) {
      failed(flags, label, res);
      return undefined;
    }
    const result = res.result as T;
    io.out(flags.json ? JSON.stringify(result, null, 2) : human(result));
    return result;
  };

  withAccount(policy.command('get'))
    .description('print the policy in force (or version N) as it was written, comments and all')
    .option('--version <n>', 'an earlier version (see `policy history`)', versionNumber)
    .action(async (f: AccountFlags & { version?: number }) => {
      const res = await ctx.call(f, {
        op: 'policy.get',
        account: f.account,
        ...(f.version !== undefined ? { version: f.version } : {}),
      });
      if (!res.ok) return failed(f, '', res);
      const doc = res.result as PolicyDocument;
      if (f.json) io.out(JSON.stringify(doc, null, 2));
      else if (io.write) io.write(doc.text);
      else io.out(policyTextForOut(doc.text));
    });

  withAccount(policy.command('check <file>'))
    .description('check a policy file (- for stdin) against the account: errors, warnings, its tests')
    .action(async (file: string, f: AccountFlags) => {
      const { label, text } = await read(file);
      const r = await run<PolicyCheckResult>(
        f,
        { op: 'policy.check', account: f.account, text },
        label,
        (x) => formatCheck(label, x),
      );
      if (r && !r.ok) ctx.setExitCode(1);
    });

  withAccount(policy.command('plan <file>'))
    .description("what each device would gain (+) and lose (-) if the file's policy were applied")
    .action(async (file: string, f: AccountFlags) => {
      const { label, text } = await read(file);
      const r = await run<PolicyPlanResult>(f, { op: 'policy.plan', account: f.account, text }, label, (x) =>
        formatPlan(label, x),
      );
      if (r && !r.ok) ctx.setExitCode(1);
    });

  withAccount(policy.command('apply <file>'))
    .description('apply a policy file (- for stdin) as the next version, if it is valid')
    .action(async (file: string, f: AccountFlags) => {
      const { label, text } = await read(file);
      await run<PolicyApplyResult>(f, { op: 'policy.apply', account: f.account, text }, label, (x) =>
        formatApply(label, x),
      );
    });

  withAccount(policy.command('history'))
    .description('list the applied versions, newest first')
    .action((f: AccountFlags) => ctx.admin(f, { op: 'policy.history', account: f.account }));

  withAccount(policy.command('rollback <version>'))
    .description("apply an earlier version's text again, as a new version")
    .action(async (value: string, f: AccountFlags) => {
      let version: number;
      try {
        version = positiveVersion(value);
      } catch (err) {
        throw new UsageError(`version "${value}" ${(err as Error).message}`);
      }
      await run<PolicyApplyResult>(
        f,
        { op: 'policy.rollback', account: f.account, version },
        `<version ${version}>`,
        (x) => formatApply(`<version ${version}>`, x, version),
      );
    });

  withAccount(policy.command('explain <src> <dst>'))
    .description('may SRC reach DST (NAME, NAME:PORT, NAME:tcp/PORT, NAME:udp/PORT, NAME:icmp), and why')
    .action((src: string, dst: string, f: AccountFlags) =>
      ctx.admin(f, { op: 'policy.explain', account: f.account, src, dst }),
    );
}
