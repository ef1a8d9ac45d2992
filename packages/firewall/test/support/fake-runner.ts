import type { CommandResult, CommandRunner } from '../../src';

export interface RecordedCall {
  cmd: string;
  args: string[];
  stdin?: string;
}

type Answer = Partial<CommandResult> | Error;

/** Records every command and answers from rules (first match wins; default: exit 0, no output). */
export class FakeRunner {
  readonly calls: RecordedCall[] = [];
  private readonly rules: Array<{
    match: (c: RecordedCall) => boolean;
    answer: (c: RecordedCall) => Answer;
  }> = [];

  /** Answers commands whose `cmd args…` line starts with `prefix`. */
  on(prefix: string, answer: Answer | ((c: RecordedCall) => Answer)): this {
    this.rules.unshift({
      match: (c) => `${c.cmd} ${c.args.join(' ')}`.startsWith(prefix),
      answer: typeof answer === 'function' ? answer : () => answer,
    });
    return this;
  }

  readonly run: CommandRunner = async (cmd, args, stdin) => {
    const call: RecordedCall = { cmd, args, ...(stdin !== undefined ? { stdin } : {}) };
    this.calls.push(call);
    const answer = this.rules.find((r) => r.match(call))?.answer(call) ?? {};
    if (answer instanceof Error) throw answer;
    return { stdout: '', stderr: '', code: 0, ...answer };
  };

  /** The command lines, one per call (stdin as an indented block), for golden files. */
  transcript(): string {
    return this.calls
      .map((c) => {
        const line = `$ ${c.cmd} ${c.args.join(' ')}`;
        if (c.stdin === undefined || c.stdin === '') return line;
        return `${line}\n${c.stdin.replace(/\n$/, '').replace(/^/gm, '  | ')}`;
      })
      .join('\n')
      .concat('\n');
  }

  lines(): string[] {
    return this.calls.map((c) => `${c.cmd} ${c.args.join(' ')}`);
  }

  reset(): void {
    this.calls.length = 0;
  }
}
