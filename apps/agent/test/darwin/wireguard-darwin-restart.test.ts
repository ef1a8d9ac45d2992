import type { DarwinWireGuardBackend } from '../../src/wireguard/darwin';
import { FakeTimers } from '../helpers/fake-timers';
import { LogMessages, setup } from './wireguard-darwin-setup';

const FAILED = 'wireguard-go restart failed';
const RECREATED = '(test) listeners told: recreated';

/** Restart timers by hand, and the log with the backend's onRecreated calls noted in it. */
function restartSetup() {
  const timers = new FakeTimers();
  const log = new LogMessages();
  const s = setup({ timers, logger: log.logger });
  s.backend.onRecreated(() => log.record(RECREATED));
  return { ...s, timers, log };
}

/** Fires the one restart waiting, and waits for how that relaunch ended. */
async function fireRestart(
  timers: FakeTimers,
  log: LogMessages,
): Promise<{ afterMs: number; outcome: string }> {
  const waiting = timers.timeouts();
  expect(waiting).toHaveLength(1);
  const from = log.messages.length;
  timers.fire(waiting[0]!);
  return { afterMs: waiting[0]!.ms, outcome: await log.first([FAILED, RECREATED], from) };
}

async function stopped(backend: DarwinWireGuardBackend): Promise<void> {
  await backend.stop();
  await expect(backend.getState()).rejects.toThrow(/not running/);
}

describe('DarwinWireGuardBackend: a relaunch after a crash that fails', () => {
  it('is tried again after 1 s, 2 s, … 30 s at most; once one succeeds, running again and listeners told', async () => {
    const { wg, utun, backend, timers, log } = restartSetup();
    await backend.start();
    wg.failNext(6); // each gets no utun, logs why and exits 1
    wg.crash();
    const relaunches = [];
    for (let i = 0; i < 7; i++) relaunches.push(await fireRestart(timers, log));
    expect(relaunches).toEqual([
      { afterMs: 1000, outcome: FAILED },
      { afterMs: 2000, outcome: FAILED },
      { afterMs: 4000, outcome: FAILED },
      { afterMs: 8000, outcome: FAILED },
      { afterMs: 16_000, outcome: FAILED },
      { afterMs: 30_000, outcome: FAILED },
      { afterMs: 30_000, outcome: RECREATED },
    ]);
    expect(timers.timeouts()).toEqual([]);
    expect(utun.utun).toBe('utun8');
    expect((await backend.getState()).peers).toEqual([]);
    expect(wg.children.map((c) => c.exitCode)).toEqual([null, 1, 1, 1, 1, 1, 1, null]);
    // Running again: the next crash backs off from 1 s again.
    wg.crash();
    expect(timers.timeouts().map((t) => t.ms)).toEqual([1000]);
    await stopped(backend);
    expect(timers.timeouts()).toEqual([]);
  });

  it('stop() while it waits for its next try: the try is cancelled and nothing relaunches', async () => {
    const { wg, utun, backend, timers, log } = restartSetup();
    await backend.start();
    wg.failNext();
    wg.crash();
    expect(await fireRestart(timers, log)).toEqual({ afterMs: 1000, outcome: FAILED });
    const nextTry = timers.timeouts();
    expect(nextTry.map((t) => t.ms)).toEqual([2000]);
    await stopped(backend);
    expect(timers.timeouts()).toEqual([]);
    // Even a try that fired regardless belongs to a restart stop() ended: it starts nothing.
    const from = log.messages.length;
    timers.fire(nextTry[0]!);
    expect(await log.first(['wireguard-go restart cancelled', 'wireguard-go started'], from)).toBe(
      'wireguard-go restart cancelled',
    );
    expect(wg.children).toHaveLength(2);
    expect(utun.utun).toBeNull();
    expect(log.messages).not.toContain(RECREATED);
  });
});
