import type { ChildProcess } from 'node:child_process';
import pino from 'pino';
import { ResolvedConfigurator, resolvedInCharge } from '../../src/platform/resolved';
import type { CommandResult, CommandRunner } from '../../src/util/command-runner';

const logger = pino({ level: 'silent' });

/** Records each command; answers from a table keyed by the command line. */
class RecordingRunner implements CommandRunner {
  readonly calls: string[] = [];
  constructor(private readonly answers: Record<string, Partial<CommandResult>> = {}) {}
  async run(command: string, args: string[]): Promise<CommandResult> {
    const line = [command, ...args].join(' ');
    this.calls.push(line);
    return { stdout: '', stderr: '', code: 0, ...this.answers[line] };
  }
  spawn(): ChildProcess {
    throw new Error('not used');
  }
}

const SETTINGS = { interfaceName: 'trellis0', server: '100.64.0.5', domain: 'acme.ts.example' };

describe('ResolvedConfigurator', () => {
  it('gives the link the stub and the domain, never the default route, once per change', async () => {
    const runner = new RecordingRunner();
    const c = new ResolvedConfigurator(runner, logger);
    await c.apply(SETTINGS);
    await c.apply(SETTINGS);
    const sequence = (server: string) => [
      `resolvectl dns trellis0 ${server}`,
      'resolvectl domain trellis0 acme.ts.example',
      'resolvectl default-route trellis0 false',
      'resolvectl llmnr trellis0 no',
      'resolvectl mdns trellis0 no',
    ];
    expect(runner.calls).toEqual(sequence('100.64.0.5'));
    await c.apply({ ...SETTINGS, server: '100.64.0.6' });
    expect(runner.calls.slice(5)).toEqual(sequence('100.64.0.6'));
    expect(await c.upstreams()).toEqual([]);
  });

  it('reverts the link on restore, and takes a link already gone as restored', async () => {
    const runner = new RecordingRunner({
      'resolvectl revert trellis0': {
        code: 1,
        stderr: 'Failed to resolve interface "trellis0": No such device',
      },
    });
    const c = new ResolvedConfigurator(runner, logger);
    await c.restore('trellis0');
    expect(runner.calls).toEqual(['resolvectl revert trellis0']);
  });

  it('fails loudly when resolved refuses a setting', async () => {
    const runner = new RecordingRunner({
      'resolvectl dns trellis0 100.64.0.5': { code: 1, stderr: 'Access denied' },
    });
    await expect(new ResolvedConfigurator(runner, logger).apply(SETTINGS)).rejects.toThrow(/Access denied/);
  });
});

describe('resolvedInCharge', () => {
  it('is true only when resolv.conf points at the stub listener and resolved answers', async () => {
    const running = new RecordingRunner();
    const stopped = new RecordingRunner({ 'resolvectl status': { code: 1 } });
    const viaStub = '# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0\n';
    expect(await resolvedInCharge(running, viaStub)).toBe(true);
    expect(await resolvedInCharge(stopped, viaStub)).toBe(false);
    expect(await resolvedInCharge(running, 'nameserver 10.0.0.53\n')).toBe(false);
    expect(running.calls).toEqual(['resolvectl status']); // the file decides first
  });
});
