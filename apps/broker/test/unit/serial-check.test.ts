import pino from 'pino';
import type { AccountHub } from '../../src/control/account-hub';
import { SERIAL_CHECK_MS, SerialCheck, type SerialCheckDeps } from '../../src/control/serial-check';
import type { EventBus } from '../../src/events/event-bus';

/** A bus that only says when it reconnected (`reconnected()`). */
function reconnectingBus() {
  const listeners: Array<() => void> = [];
  const bus = {
    onReconnected: (fn: () => void) => {
      listeners.push(fn);
      return () => {};
    },
  } as unknown as EventBus;
  const reconnected = () => {
    for (const fn of listeners) fn();
  };
  return { bus, reconnected };
}

describe('SerialCheck when the event bus reconnects', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('reloads every hub, again at the next check when the database failed, and says so once done', async () => {
    const { bus, reconnected } = reconnectingBus();
    const loads: string[] = [];
    let failures = 1;
    const devices: SerialCheckDeps['devices'] = {
      accountSerials: async () => {
        if (failures-- > 0) throw new Error('database away');
        return new Map([['acme', 5]]);
      },
      loadAccount: async (id: string) => {
        loads.push(id);
        return { serial: 5, devices: [], policy: { version: 0, text: '' } };
      },
    } as unknown as SerialCheckDeps['devices'];
    // A hub whose serial never stalls: only a reconnection reloads it.
    const hub = {
      serials: { stalled: () => false },
      reconcile: () => [],
      preparePolicy: async () => null,
    } as unknown as AccountHub;
    const resynced = jest.fn();
    const check = new SerialCheck(bus, {
      devices,
      hubs: new Map([['acme', hub]]),
      closeRemoved: () => {},
      resynced,
      logger: pino({ level: 'silent' }),
    });
    reconnected();
    await jest.advanceTimersByTimeAsync(0);
    expect(loads).toEqual([]);
    expect(resynced).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(SERIAL_CHECK_MS);
    expect(loads).toEqual(['acme']);
    expect(resynced).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(SERIAL_CHECK_MS * 2);
    expect(loads).toEqual(['acme']);
    expect(resynced).toHaveBeenCalledTimes(1);
    check.stop();
  });

  it('an account that fails to reload holds up no other and is resynced once it reloads; nothing after stop()', async () => {
    const { bus, reconnected } = reconnectingBus();
    const reconciled: string[] = [];
    let brokenFailures = 1;
    const devices = {
      accountSerials: async () =>
        new Map([
          ['broken', 5],
          ['fine', 5],
        ]),
      loadAccount: async (id: string) => {
        if (id === 'broken' && brokenFailures-- > 0) throw new Error('bad row');
        return { serial: 5, devices: [], policy: { version: 0, text: '' } };
      },
    } as unknown as SerialCheckDeps['devices'];
    const hub = (id: string) =>
      ({
        serials: { stalled: () => false },
        reconcile: () => {
          reconciled.push(id);
          return [];
        },
        preparePolicy: async () => null,
      }) as unknown as AccountHub;
    const logs: Array<Record<string, unknown>> = [];
    const resynced = jest.fn();
    const check = new SerialCheck(bus, {
      devices,
      hubs: new Map([
        ['broken', hub('broken')],
        ['fine', hub('fine')],
      ]),
      closeRemoved: () => {},
      resynced,
      logger: pino({ level: 'warn' }, { write: (line: string) => logs.push(JSON.parse(line)) }),
    });
    reconnected();
    await jest.advanceTimersByTimeAsync(0);
    expect(reconciled).toEqual(['fine']);
    expect(logs.map((l) => [l.msg, l.accountId])).toEqual([
      ['account netmap reload failed', 'broken'],
      ['account netmaps reloaded', undefined],
    ]);
    expect(resynced.mock.calls).toEqual([[['fine']]]);
    await jest.advanceTimersByTimeAsync(SERIAL_CHECK_MS);
    expect(reconciled).toEqual(['fine', 'broken']);
    expect(resynced.mock.calls).toEqual([[['fine']], [['broken']]]);
    await jest.advanceTimersByTimeAsync(SERIAL_CHECK_MS);
    expect(reconciled).toEqual(['fine', 'broken']);
    reconnected();
    check.stop();
    await jest.advanceTimersByTimeAsync(SERIAL_CHECK_MS);
    expect(resynced).toHaveBeenCalledTimes(2);
  });
});
