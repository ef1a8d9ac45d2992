import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { darwinNetworkEvents, isChange } from '../../src/platform/network-events-darwin';
import { FakeDarwin } from './fake-darwin';
import { FakeChild } from './fake-wireguard-go';
import { GOLDEN_DIR } from './golden';

/** `route -n monitor` output in its format (route.c's print_rtmsg): interface, address and route messages. */
const RECORDED = readFileSync(join(GOLDEN_DIR, 'route-monitor.txt'), 'utf8');

describe('darwin network events (route -n monitor)', () => {
  it('one event per address, link or route message; ARP entries and reports are not changes', () => {
    const runner = new FakeDarwin();
    const child = new FakeChild(4321);
    runner.spawner = () => child.asChildProcess();
    let events = 0;
    const stop = darwinNetworkEvents(runner)(() => events++);
    expect(runner.calls).toEqual(['spawn route -n monitor']);
    // Chunks split lines anywhere, as a pipe does.
    for (let i = 0; i < RECORDED.length; i += 37) child.stdout.write(RECORDED.slice(i, i + 37));
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      // RTM_IFINFO, RTM_NEWADDR, RTM_ADD default, RTM_DELETE default.
      expect(events).toBe(4);
      stop();
      expect(child.signals).toEqual(['SIGTERM']);
      child.stdout.write('RTM_ADD: Add Route: len 176, flags:<UP,GATEWAY,DONE,STATIC>\n');
      expect(events).toBe(4);
    });
  });

  it('tells changes from noise line by line', () => {
    expect(isChange('RTM_DELADDR: address being removed from iface: len 108, metric 0, flags:<UP>')).toBe(
      true,
    );
    expect(isChange('RTM_CHANGE: Change Metrics or flags: len 140, pid: 0, flags:<UP,GATEWAY>')).toBe(true);
    expect(isChange('RTM_ADD: Add Route: len 184, flags:<UP,HOST,DONE,LLINFO,WASCLONED>')).toBe(false);
    expect(isChange('RTM_MISS: Lookup failed on this address: len 92')).toBe(false);
    expect(isChange('got message of size 148 on Mon Dec  7 04:40:47 2026')).toBe(false);
  });
});
