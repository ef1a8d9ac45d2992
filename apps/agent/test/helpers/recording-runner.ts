import type { ChildProcess } from 'node:child_process';
import type { CommandResult, CommandRunner } from '../../src/util/command-runner';

/** Records each command line; answers from a table keyed by it (default: success, no output). */
export class RecordingRunner implements CommandRunner {
  readonly calls: string[] = [];
  constructor(readonly answers: Record<string, Partial<CommandResult>> = {}) {}
  async run(command: string, args: string[]): Promise<CommandResult> {
    const line = [command, ...args].join(' ');
    this.calls.push(line);
    return { stdout: '', stderr: '', code: 0, ...this.answers[line] };
  }
  spawn(): ChildProcess {
    throw new Error('not used');
  }
}
