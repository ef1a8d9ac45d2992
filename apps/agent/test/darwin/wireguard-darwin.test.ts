import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import { nameFromOutput } from '../../src/wireguard/darwin';
import { isWireguardGoForUtun, parsePsLine } from '../../src/wireguard/darwin-process';
import { expectGolden, lines } from './golden';
import { FakeProcesses, LogMessages, setup } from './wireguard-darwin-setup';

/** `ps` that holds its answer until the test opens it: a restart is then paused inside removeStale. */
class HeldProcesses extends FakeProcesses {
  readonly asked: Promise<void>;
  private markAsked: () => void = () => undefined;
  private release: () => void = () => undefined;
  private readonly opened = new Promise<void>((resolve) => {
    this.release = resolve;
  });
  constructor() {
    super(new Map());
    this.asked = new Promise((resolve) => {
      this.markAsked = resolve;
    });
  }
  override async commandOf(pid: number): Promise<string | null> {
    this.markAsked();
    await this.opened;
    return super.commandOf(pid);
  }
  open(): void {
    this.release();
  }
}

describe('DarwinWireGuardBackend (wireguard-go on a utun, recorded)', () => {
  it('up: `env WG_TUN_NAME_FILE=… wireguard-go -f utun`, the utun from the name file, UAPI over its socket', async () => {
    const { stateDir, dir, fake, wg, utun, backend } = setup();
    await backend.start();
    expectGolden('wireguard-start.txt', lines(fake.calls.map((c) => c.replace(stateDir, '<state>'))));
    expect(utun.utun).toBe('utun7');
    expect(backend.interfaceName).toBe('trellis0');
    expect(readFileSync(join(stateDir, 'wireguard-go.pid'), 'utf8')).toBe('50000\n');
    const self = generateKeyPair();
    const peer = generateKeyPair().publicKey;
    let endpointEvents = 0;
    backend.onEndpointsChanged(() => endpointEvents++);
    await backend.apply({
      privateKey: self.privateKey,
      listenPort: 41641,
      peers: [{ publicKey: peer, endpoint: '203.0.113.5:41641', allowedIps: ['100.64.0.2/32'] }],
    });
    await backend.apply({ peers: [{ publicKey: peer, allowedIps: ['100.64.0.2/32', '10.1.0.0/16'] }] });
    expect(endpointEvents).toBe(1);
    const state = await backend.getState();
    expect(state.privateKey).toBe(self.privateKey);
    expect(state.listenPort).toBe(41641);
    expect(state.peers[0]).toMatchObject({ publicKey: peer, endpoint: '203.0.113.5:41641' });
    expect(wg.requests[0]).toMatch(/^set=1\nprivate_key=[0-9a-f]{64}\nlisten_port=41641\npublic_key=/);
    await backend.stop();
    expect(wg.children[0]!.signals).toEqual(['SIGTERM']);
    expect(utun.utun).toBeNull();
    expect(existsSync(join(dir, 'utun7.sock'))).toBe(false);
    expect(existsSync(join(stateDir, 'wireguard-go.pid'))).toBe(false);
    expect(existsSync(join(stateDir, 'wireguard-go.name'))).toBe(false);
    await expect(backend.getState()).rejects.toThrow(/not running/);
    await backend.stop(); // twice is fine
  });

  it('wireguard-go dies: started again on a new utun, listeners told to re-apply', async () => {
    const { wg, utun, backend } = setup();
    await backend.start();
    const recreated = new Promise<string | null>((resolve) => backend.onRecreated(() => resolve(utun.utun)));
    wg.crash();
    expect(utun.utun).toBeNull();
    expect(await recreated).toBe('utun8');
    expect((await backend.getState()).peers).toEqual([]);
    await backend.stop();
  });

  it('launchd stops trellisd (SIGTERM to its group): wireguard-go, in a group of its own, runs until stop()', async () => {
    const { wg, utun, backend } = setup();
    await backend.start();
    let recreated = 0;
    backend.onRecreated(() => recreated++);
    try {
      await wg.signalDaemonGroup();
      // The daemon's teardown (routes, networksetup) runs now: against the utun it set them up on.
      expect(utun.utun).toBe('utun7');
      expect((await backend.getState()).peers).toEqual([]);
    } finally {
      await backend.stop();
    }
    expect(wg.children.map((c) => c.signals)).toEqual([['SIGTERM']]);
    expect(utun.utun).toBeNull();
    expect(recreated).toBe(0);
  });

  it('wireguard-go dies and stop() begins while its restart is under way: no new wireguard-go', async () => {
    const processes = new HeldProcesses();
    const log = new LogMessages();
    const { wg, utun, backend } = setup({ processes, logger: log.logger });
    await backend.start();
    const afterStart = log.messages.length;
    wg.crash();
    await processes.asked; // the restart is clearing the dead one's files, held at `ps`
    const stopped = backend.stop();
    processes.open();
    await stopped;
    const outcome = await log.first(['wireguard-go restart cancelled', 'wireguard-go started'], afterStart);
    expect(outcome).toBe('wireguard-go restart cancelled');
    expect(wg.children).toHaveLength(1);
    expect(utun.utun).toBeNull();
    await expect(backend.getState()).rejects.toThrow(/not running/);
  });

  it('crash recovery: the orphaned wireguard-go is stopped and its dead socket removed; others untouched', async () => {
    const processes = new FakeProcesses(
      new Map([
        [4242, '/opt/homebrew/bin/wireguard-go -f utun'],
        [777, '/usr/sbin/mDNSResponder'],
      ]),
    );
    const { dir, stateDir, utun, backend } = setup({ processes });
    await backend.start().then(() => backend.stop());
    // What a SIGKILLed trellisd leaves: the pid and name files, the socket of a wireguard-go that died too.
    writeFileSync(join(stateDir, 'wireguard-go.pid'), '4242\n');
    writeFileSync(join(stateDir, 'wireguard-go.name'), 'utun3\n');
    writeFileSync(join(dir, 'utun3.sock'), '');
    await backend.start();
    expect(processes.signals).toEqual(['4242 SIGTERM']);
    expect(existsSync(join(dir, 'utun3.sock'))).toBe(false);
    expect(utun.utun).toBe('utun8');
    await backend.stop();
    // A pid file naming another program: nothing is signalled.
    writeFileSync(join(stateDir, 'wireguard-go.pid'), '777\n');
    await backend.start();
    await backend.stop();
    expect(processes.signals).toEqual(['4242 SIGTERM']);
  });

  it('reads ps and wireguard-go output the way macOS prints them', () => {
    expect(parsePsLine('S    /usr/local/bin/wireguard-go -f utun\n')).toBe(
      '/usr/local/bin/wireguard-go -f utun',
    );
    expect(parsePsLine('Z    (wireguard-go)\n')).toBeNull();
    expect(parsePsLine('')).toBeNull();
    expect(isWireguardGoForUtun('/usr/local/bin/wireguard-go -f utun')).toBe(true);
    expect(isWireguardGoForUtun('/usr/local/bin/wireguard-go -f wg0')).toBe(false);
    expect(nameFromOutput('DEBUG: (utun5) 2026/12/07 04:40:47 UAPI listener started\n')).toBe('utun5');
    expect(nameFromOutput('ERROR: (utun) Failed to create TUN device')).toBeNull();
  });
});
