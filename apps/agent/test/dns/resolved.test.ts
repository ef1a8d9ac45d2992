import pino from 'pino';
import { ResolvedConfigurator, resolvedInCharge } from '../../src/platform/resolved';
import { FakeResolved } from '../helpers/fake-resolved';
import { FakeTimers } from '../helpers/fake-timers';
import { RecordingRunner } from '../helpers/recording-runner';

const logger = pino({ level: 'silent' });

const SETTINGS = { interfaceName: 'trellis0', server: '100.64.0.5', domain: 'acme.ts.example' };
const EXIT = { ...SETTINGS, defaultRoute: true };

/** Lets the watch's read-backs (promises on the fake runner) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('ResolvedConfigurator', () => {
  it('gives the link the stub and the domain, never the default route, once per change', async () => {
    const runner = new FakeResolved();
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
    expect(runner.sets()).toEqual(sequence('100.64.0.5'));
    await c.apply({ ...SETTINGS, server: '100.64.0.6' });
    expect(runner.sets().slice(5)).toEqual(sequence('100.64.0.6'));
    expect(runner.links.get('trellis0')).toEqual({
      dns: ['100.64.0.6'],
      domains: ['acme.ts.example'],
      defaultRoute: false,
    });
    expect(await c.upstreams()).toEqual([]);
  });

  it('applies again when resolved dropped the link settings, instead of trusting what it set last', async () => {
    const runner = new FakeResolved();
    const c = new ResolvedConfigurator(runner, logger);
    await c.apply(EXIT);
    runner.drop('trellis0'); // `resolvectl revert` by someone, or the link re-created
    await c.apply(EXIT);
    expect(runner.links.get('trellis0')).toEqual({
      dns: ['100.64.0.5'],
      domains: ['acme.ts.example', '~.'],
      defaultRoute: true,
    });
    expect(runner.sets()).toHaveLength(10);
  });

  it('applies again when only the default route or the server was taken away', async () => {
    const runner = new FakeResolved();
    const c = new ResolvedConfigurator(runner, logger);
    await c.apply(EXIT);
    runner.links.set('trellis0', { ...runner.links.get('trellis0')!, defaultRoute: false });
    await c.apply(EXIT);
    expect(runner.links.get('trellis0')?.defaultRoute).toBe(true);
    runner.links.set('trellis0', { ...runner.links.get('trellis0')!, dns: [] });
    await c.apply(EXIT);
    expect(runner.links.get('trellis0')?.dns).toEqual(['100.64.0.5']);
  });

  it('never takes `~.` off the link while the exit node stays in use', async () => {
    const runner = new FakeResolved();
    const c = new ResolvedConfigurator(runner, logger);
    await c.apply(EXIT);
    const windows: string[] = [];
    runner.onCommand = (line, link) => {
      if (!link?.domains.includes('~.') || !link.defaultRoute) windows.push(line);
    };
    await c.apply({ ...EXIT, server: '100.64.0.6', domain: 'beta.ts.example' });
    expect(runner.links.get('trellis0')).toEqual({
      dns: ['100.64.0.6'],
      domains: ['beta.ts.example', '~.'],
      defaultRoute: true,
    });
    expect(windows).toEqual([]);
  });

  it('watches the link while an exit node is in use, and calls back when resolved lost it', async () => {
    const runner = new FakeResolved();
    const timers = new FakeTimers();
    const c = new ResolvedConfigurator(runner, logger, timers, 5000);
    let changes = 0;
    const stop = c.watch(() => {
      changes += 1;
    });
    const fire = async () => {
      const [t] = timers.timeouts();
      if (!t) throw new Error('no check scheduled');
      timers.fire(t);
      await settle();
    };
    expect(timers.timeouts()).toEqual([]); // nothing applied yet: nothing to check
    await c.apply(EXIT);
    const before = runner.calls.length;
    await fire();
    expect(changes).toBe(0);
    expect(runner.calls.length).toBeGreaterThan(before); // it did read the link back
    runner.drop('trellis0');
    await fire();
    expect(changes).toBe(1);
    await c.apply(EXIT); // what the caller does on the call back
    await fire();
    expect(changes).toBe(1);
    expect(timers.timeouts()).toHaveLength(1);
    stop();
    expect(timers.timeouts()).toEqual([]);
  });

  it('polls only while an exit node is in use: starts when one is applied later, stops when it goes', async () => {
    const runner = new FakeResolved();
    const timers = new FakeTimers();
    const c = new ResolvedConfigurator(runner, logger, timers, 5000);
    const stop = c.watch(() => undefined);
    await c.apply(SETTINGS);
    expect(timers.timeouts()).toEqual([]); // no exit node: no resolvectl every 5 s
    await c.apply(EXIT);
    expect(timers.timeouts()).toHaveLength(1);
    await c.apply(SETTINGS);
    expect(timers.timeouts()).toEqual([]);
    await c.apply(EXIT);
    await c.restore('trellis0');
    expect(timers.timeouts()).toEqual([]);
    // A check under way when the exit node goes does not schedule the next one.
    await c.apply(EXIT);
    const [t] = timers.timeouts();
    timers.fire(t!);
    await c.apply(SETTINGS);
    await settle();
    expect(timers.timeouts()).toEqual([]);
    stop();
  });

  it('reads back values resolvectl wraps onto further lines, and through colour codes', async () => {
    const link = 'Link 7 (trellis0):';
    const runner = new RecordingRunner({
      // Wrapped at the width: the rest of the values on an indented line without the marker.
      'resolvectl domain trellis0': {
        stdout: `${link} acme.ts.example\n${' '.repeat(19)}~.\nLink 8 (eth0): lan\n`,
      },
      'resolvectl default-route trellis0': { stdout: `\u001b[1m${link}\u001b[0m yes\n` },
      'resolvectl dns trellis0': { stdout: `${link}\n    100.64.0.5\n` },
    });
    const c = new ResolvedConfigurator(runner, logger);
    await c.apply(EXIT);
    expect(runner.calls).toEqual([
      'resolvectl domain trellis0',
      'resolvectl default-route trellis0',
      'resolvectl dns trellis0',
    ]); // in place: nothing applied again
  });

  it('reads back the forms resolvectl prints a server in', async () => {
    const runner = new RecordingRunner({
      'resolvectl domain trellis0': { stdout: 'Link 7 (trellis0): ACME.ts.example. ~.\n' },
      'resolvectl default-route trellis0': { stdout: 'Link 7 (trellis0): yes\n' },
      'resolvectl dns trellis0': { stdout: 'Link 7 (trellis0): 100.64.0.5:53#acme\n' },
    });
    const c = new ResolvedConfigurator(runner, logger);
    await c.apply(EXIT);
    expect(runner.calls).toEqual([
      'resolvectl domain trellis0',
      'resolvectl default-route trellis0',
      'resolvectl dns trellis0',
    ]);
    runner.answers['resolvectl dns trellis0'] = { stdout: 'Link 7 (trellis0): 100.64.0.55\n' };
    await c.apply(EXIT);
    expect(runner.calls).toContain('resolvectl dns trellis0 100.64.0.5');
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
    const runner = new FakeResolved(['trellis0'], {
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
