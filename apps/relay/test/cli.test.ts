import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RelayCloseCode } from '@trellis/proto';
import { configFromFlags, defaultName, parseHostPort, type RelayFlags } from '../src/cli/options';
import { type CliIo, runCli } from '../src/cli/program';
import { FakeBroker } from './support/fake-broker';

const TOKEN = `trl_${'B'.repeat(43)}`;

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  let stop: (signal: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const cli: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), env, stopSignal: () => stopped };
  return { cli, out, err, stop: (signal = 'SIGTERM') => stop(signal) };
}

describe('trellis-relay command line', () => {
  let stateDir: string;
  beforeAll(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'trellis-relay-'));
  });
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it.each([
    [['--token', TOKEN, '--public-address', '192.0.2.1'], /--broker URL is required/],
    [['--broker', 'http://b:1', '--token', TOKEN, '--public-address', 'x'], /https/],
    [['--broker', 'https://b:1', '--public-address', 'x'], /relay token is required/],
    [['--broker', 'https://b:1', '--token', 'secret', '--public-address', 'x'], /trl_/],
    [['--broker', 'https://b:1', '--token', TOKEN], /--public-address is required/],
    [['--broker', 'https://b:1', '--token', TOKEN, '--listen', '192.0.2.1', '--ports', '9-3'], /--ports/],
    [
      ['--broker', 'https://b:1', '--token', TOKEN, '--public-address', 'x', '--tcp-listen', '::1:443'],
      /brackets/,
    ],
    [
      ['--broker', 'https://b:1', '--token', TOKEN, '--public-address', 'x', '--fingerprint', 'abc'],
      /SHA-256/,
    ],
    [
      ['--broker', 'https://b:1', '--token', TOKEN, '--public-address', 'x', '--name', 'Not_A_Label'],
      /DNS label/,
    ],
    [
      ['--broker', 'https://b:1', '--token', TOKEN, '--public-address', 'x', '--no-such-flag'],
      /unknown option/,
    ],
    [
      ['--broker', 'https://b:1', '--token', TOKEN, '--public-address', 'x', '--kernel-forwarding', 'yes'],
      /--kernel-forwarding must be auto, on or off/,
    ],
  ])('exits 2 with a clear message on bad flags: %j', async (argv, message) => {
    const { cli, err } = io();
    expect(await runCli(argv, cli)).toBe(2);
    expect(err.join('\n')).toMatch(message);
  });

  describe('several broker instances', () => {
    const flags = (more: Partial<RelayFlags>): RelayFlags => ({
      token: TOKEN,
      publicAddress: '192.0.2.1',
      listen: '0.0.0.0',
      ports: '40000-40999',
      tcpListen: 'off',
      stateDir: '/tmp/x',
      metricsListen: 'off',
      logLevel: 'info',
      kernelForwarding: 'off',
      ...more,
    });
    const FP1 = 'AB'.repeat(32);
    const FP2 = `sha256:${'cd:'.repeat(31)}cd`;

    it('takes --broker repeated or as lists, else TRELLIS_RELAY_BROKER, and several pins', () => {
      const config = configFromFlags(
        flags({
          broker: ['https://b1.example:8443', 'https://b2.example:8443,https://192.0.2.3:8443'],
          fingerprint: [FP1, FP2],
        }),
        { TRELLIS_RELAY_BROKER: 'https://ignored.example' },
      );
      expect(config.brokers).toEqual([
        'https://b1.example:8443/',
        'https://b2.example:8443/',
        'https://192.0.2.3:8443/',
      ]);
      expect(config.trust).toEqual({ fingerprints: [FP1, `${'cd:'.repeat(31)}cd`] });
      const fromEnv = configFromFlags(flags({ caFile: ['a.pem', '/etc/b.pem'] }), {
        TRELLIS_RELAY_BROKER: 'https://b1.example:8443, https://b2.example:8443',
      });
      expect(fromEnv.brokers).toEqual(['https://b1.example:8443/', 'https://b2.example:8443/']);
      expect(fromEnv.trust).toEqual({ caFiles: [resolve('a.pem'), '/etc/b.pem'] });
    });

    it.each([
      [{}, {}, '--broker URL is required (or TRELLIS_RELAY_BROKER)'],
      [
        { broker: ['https://b1.example, http://b2.example'] },
        {},
        '--broker: bad broker URL "http://b2.example"',
      ],
      [{ broker: [','] }, {}, '--broker: no broker URL given'],
      [{ broker: ['https://b1.example'], fingerprint: [FP1, 'zz'] }, {}, '--fingerprint must be a SHA-256'],
      [{ broker: ['https://b1.example'], fingerprint: [FP1], caFile: ['a.pem'] }, {}, 'not both'],
    ])('refuses %j %j: %s', (more, env, message) => {
      expect(() => configFromFlags(flags(more as Partial<RelayFlags>), env)).toThrow(message);
    });
  });

  it('derives names and listen addresses', () => {
    expect(defaultName('Build_Box-01.example.com')).toBe('build-box-01');
    expect(defaultName('---')).toBe('relay');
    expect(parseHostPort('--x', '[::1]:443')).toEqual({ host: '::1', port: 443 });
    expect(parseHostPort('--x', ':9092')).toEqual({ host: '0.0.0.0', port: 9092 });
  });

  it('starts, says ready, stops cleanly on a signal, and exits 1 when the broker refuses the token', async () => {
    const broker = new FakeBroker();
    const url = await broker.start();
    const argv = [
      ...['--broker', url, '--fingerprint', broker.fingerprint, '--listen', '127.0.0.1'],
      ...['--ports', '45000-45099', '--tcp-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      ...['--state-dir', stateDir, '--log-level', 'silent', '--name', 'relay-test'],
      // A unit test leaves the host's nftables alone (the kernel path is tested in the lab).
      ...['--kernel-forwarding', 'off'],
    ];
    try {
      broker.onHello = () => broker.welcome();
      const run = io({ TRELLIS_RELAY_TOKEN: TOKEN });
      const exit = runCli(argv, run.cli);
      const hello = await broker.waitFor('relay-hello');
      expect(hello).toMatchObject({
        token: TOKEN,
        name: 'relay-test',
        publicAddress: '127.0.0.1',
        ports: { first: 45000, last: 45099 },
      });
      expect(hello.tcp?.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      expect(hello.tcp?.url).toMatch(/^wss:\/\/127\.0\.0\.1:[1-9]\d*$/);
      expect(run.out.join('\n')).toMatch(/trellis-relay ready relay-test/);
      run.stop();
      expect(await exit).toBe(0);

      // Same state dir: the generated certificate (and its fingerprint) is reused.
      broker.received.length = 0;
      broker.onHello = () => broker.close(RelayCloseCode.badToken, 'unknown token');
      const refused = io({ TRELLIS_RELAY_TOKEN: TOKEN });
      expect(await runCli(argv, refused.cli)).toBe(1);
      expect(refused.err.join('\n')).toMatch(/refused the relay token/);
      const second = broker.received.find((m) => m.type === 'relay-hello');
      expect(second && 'tcp' in second && second.tcp?.fingerprint).toBe(hello.tcp?.fingerprint);
    } finally {
      await broker.stop();
    }
  });
});
