import { DeltaMessage, type DeviceState } from '@trellis/proto';
import { AccountHub } from '../../src/control/account-hub';
import type { ControlSession } from '../../src/control/control-session';
import { deviceState } from '../support/device-state';
import { fakeSession } from '../support/fake-session';

describe('AccountHub: how long a change waits after a slow flush', () => {
  const N = 200;
  let devices: DeviceState[];
  let delivered: Array<{ serial: number; at: number }>;
  /** Added to the fake clock's performance.now while a flush "takes" this long. */
  let slowness: number;
  let flushCost: number;

  beforeAll(() => {
    devices = Array.from({ length: N }, (_, i) =>
      deviceState(`d${i}`, `100.64.0.${i + 1}`, { online: true }),
    );
  });
  beforeEach(() => {
    jest.useFakeTimers();
    const fakeNow = performance.now.bind(performance);
    slowness = 0;
    flushCost = 0;
    delivered = [];
    jest.spyOn(performance, 'now').mockImplementation(() => fakeNow() + slowness);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    jest.useRealTimers();
  });

  function hub(): AccountHub {
    const h = AccountHub.create('acme', 'z', 25, 1, devices);
    devices.forEach((d, i) => {
      const send: ControlSession['send'] = (frame, type) => {
        if (type !== 'delta') return;
        // The first device's send stands for the whole flush's cost.
        if (i === 0) slowness += flushCost;
        delivered.push({
          serial: DeltaMessage.parse(JSON.parse(frame as string)).serial,
          at: performance.now(),
        });
      };
      h.attach(fakeSession(d.id, send, { compact: true }));
    });
    return h;
  }

  const endpointChange = (h: AccountHub, serial: number) =>
    h.applyChange(
      { kind: 'upsert', device: { ...devices[N - 1]!, endpoints: [`192.0.2.1:${serial}`] } },
      serial,
    );
  const deliveredAfter = (ms: number) => {
    const before = delivered.length;
    jest.advanceTimersByTime(ms);
    return delivered.length > before;
  };
  /** A hub whose first change (serial 2) went out in a flush that took `costMs`. */
  const afterSlowFlush = (costMs: number) => {
    const h = hub();
    flushCost = costMs;
    endpointChange(h, 2);
    expect(deliveredAfter(25)).toBe(true);
    flushCost = 0;
    return h;
  };

  it('a change right after a slow flush waits as long as that flush took (at most 250 ms)', () => {
    const h = afterSlowFlush(300);
    endpointChange(h, 3);
    expect(deliveredAfter(240)).toBe(false);
    expect(deliveredAfter(15)).toBe(true);
  });

  it('a change after a quiet spell waits only the short window, however slow the last flush was', () => {
    const h = afterSlowFlush(300);
    jest.advanceTimersByTime(1_000);
    endpointChange(h, 3);
    expect(deliveredAfter(24)).toBe(false);
    expect(deliveredAfter(1)).toBe(true);
    expect(new Set(delivered.map((d) => d.serial))).toEqual(new Set([2, 3]));
  });

  it('a change partway into the gap waits only for the rest of it', () => {
    const h = afterSlowFlush(100);
    jest.advanceTimersByTime(60);
    endpointChange(h, 3);
    expect(deliveredAfter(39)).toBe(false);
    expect(deliveredAfter(1)).toBe(true);
  });
});
