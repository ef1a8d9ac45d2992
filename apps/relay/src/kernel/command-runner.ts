import { execFile } from 'node:child_process';

/** Runs a command, optionally with stdin; resolves stdout, rejects with stderr in the message. */
export type CommandRunner = (file: string, args: string[], input?: string) => Promise<string>;

export const runCommand: CommandRunner = (file, args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
