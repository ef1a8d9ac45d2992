import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { CandidateWatcher } from '../../src/platform/candidates';
import { NETWORK_EVENTS_SCRIPT, windowsNetworkEvents } from '../../src/platform/network-events-windows';
import { POWERSHELL, scriptOf } from '../../src/platform/powershell';
import type { CommandRunner } from '../../src/util/command-runner';
import { expectGolden } from './golden';

/** A PowerShell child whose stdout the test writes, and which records being killed. */
class FakeChild extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  killed = false;
  kill(): boolean {
    this.killed = true;
    return true;
  }
}

function runnerWith(child: FakeChild) {
  const spawned: Array<{ command: string; args: string[] }> = [];
  const runner: CommandRunner = {
    run: async () => ({ stdout: '', stderr: '', code: 0 }),
    spawn: (command, args) => {
      spawned.push({ command, args });
      return child as unknown as ChildProcess;
    },
  };
  return { runner, spawned };
}

/** Lets the PassThrough deliver what was written (one turn of the event loop). */
const flush = () => new Promise((r) => setImmediate(r));

describe('Windows network change events (roam)', () => {
  it('runs the waiting PowerShell, calls back once per event line, and kills it on stop', async () => {
    const child = new FakeChild();
    const { runner, spawned } = runnerWith(child);
    let changes = 0;
    const stop = windowsNetworkEvents(runner)(() => changes++);
    expect(spawned).toHaveLength(1);
    expect(spawned[0]!.command).toBe(POWERSHELL);
    expect(scriptOf(spawned[0]!.args)).toBe(NETWORK_EVENTS_SCRIPT);
    expectGolden('network-events.ps1', NETWORK_EVENTS_SCRIPT);

    child.stdout.write('ready\r\n');
    await flush();
    expect(changes).toBe(0);
    // Lines may arrive split across chunks, and CRLF-terminated.
    child.stdout.write('trellis.address\r\ntrellis.li');
    await flush();
    expect(changes).toBe(1);
    child.stdout.write('nk\r\n');
    await flush();
    expect(changes).toBe(2);

    stop();
    expect(child.killed).toBe(true);
    child.stdout.write('trellis.address\r\n');
    await flush();
    expect(changes).toBe(2);
  });

  it('stays silent when PowerShell cannot start (the periodic re-read still runs)', () => {
    const child = new FakeChild();
    const { runner } = runnerWith(child);
    const stop = windowsNetworkEvents(runner)(() => undefined);
    expect(() => child.emit('error', new Error('spawn powershell.exe ENOENT'))).not.toThrow();
    stop();
  });

  it('makes the candidate watcher re-read at once when an address changes', async () => {
    const child = new FakeChild();
    const { runner } = runnerWith(child);
    let candidates = ['192.168.1.20:51820'];
    const seen: string[][] = [];
    // An interval far longer than the test: only the event can cause the second read.
    const watcher = new CandidateWatcher(
      () => candidates,
      (c) => seen.push(c),
      3_600_000,
      windowsNetworkEvents(runner),
    );
    watcher.start();
    expect(seen).toEqual([['192.168.1.20:51820']]);
    candidates = ['10.0.0.23:51820'];
    child.stdout.write('trellis.address\n');
    await flush();
    expect(seen).toEqual([['192.168.1.20:51820'], ['10.0.0.23:51820']]);
    watcher.stop();
    expect(child.killed).toBe(true);
  });
});
