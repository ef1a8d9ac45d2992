import { DeltaMessage, type DeviceState } from '@trellis/proto';
import { AccountHub } from '../../src/control/account-hub';
import type { ControlSession } from '../../src/control/control-session';
import { deviceState } from '../support/device-state';
import { fakeSession } from '../support/fake-session';

/** A connected device that only records the deltas it is sent. */
function session(deviceId: string, compact: boolean, deltas: DeltaMessage[]): ControlSession {
  return fakeSession(
    deviceId,
    (frame, type) => {
      if (type === 'delta') deltas.push(DeltaMessage.parse(JSON.parse(frame as string)));
    },
    { compact },
  );
}

describe('AccountHub: devices only coming online or going offline', () => {
  const N = 3_000;
  let devices: DeviceState[];
  beforeAll(() => {
    devices = Array.from({ length: N }, (_, i) =>
      deviceState(`d${i}`, `100.64.${i >> 8}.${(i & 255) + 1}`, { online: true }),
    );
  });
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function hub() {
    const h = AccountHub.create('acme', 'z', 25, 1, devices);
    const compact: DeltaMessage[] = [];
    const older: DeltaMessage[] = [];
    for (const d of devices) h.attach(session(d.id, d !== devices[1], d === devices[1] ? older : compact));
    return { h, compact, older };
  }

  it('wait longer the more devices a flush goes to, and go out as presence lists', () => {
    const { h, compact, older } = hub();
    const [a, b] = [devices[N - 1]!, devices[N - 2]!];
    h.applyChange({ kind: 'upsert', device: { ...a, online: false } }, 2);
    h.applyChange({ kind: 'upsert', device: { ...b, online: false } }, 3);
    h.applyChange({ kind: 'upsert', device: { ...b, online: true } }, 4);
    // 3,000 connected devices: presence waits 300 ms, not the 25 ms window.
    jest.advanceTimersByTime(250);
    expect(compact).toHaveLength(0);
    jest.advanceTimersByTime(100);
    expect(compact.length).toBe(N - 1);
    const seen = compact.find((d) => d.offline !== undefined && d.online !== undefined)!;
    expect(seen.offline).toEqual([a.id]);
    expect(seen.online).toEqual([b.id]);
    expect(seen.upsert).toEqual([]);
    // An agent of capability 2 gets them whole.
    expect(older).toHaveLength(1);
    expect(older[0]!.online).toBeUndefined();
    expect(older[0]!.upsert.map((p) => [p.id, p.online])).toEqual([
      [a.id, false],
      [b.id, true],
    ]);
  });

  it('a change that cannot wait takes the waiting presence with it at once', () => {
    const { h, compact } = hub();
    const [a, b] = [devices[N - 1]!, devices[N - 2]!];
    h.applyChange({ kind: 'upsert', device: { ...a, online: false } }, 2);
    jest.advanceTimersByTime(100);
    h.applyChange({ kind: 'upsert', device: { ...b, endpoints: ['192.0.2.9:41641'] } }, 3);
    jest.advanceTimersByTime(25);
    const d = compact.find((x) => x.upsert.length > 0)!;
    expect(d.upsert.map((p) => p.id)).toEqual([b.id]);
    expect(d.offline).toEqual([a.id]);
    jest.advanceTimersByTime(2_000);
    expect(compact.length).toBe(N - 1); // one delta each (b's own has only a in it)
  });

  it('a device that came online and changed its endpoints in the same batch is upserted whole', () => {
    const { h, compact } = hub();
    const a = devices[N - 1]!;
    h.applyChange({ kind: 'upsert', device: { ...a, online: false } }, 2);
    h.applyChange({ kind: 'upsert', device: { ...a, online: true, endpoints: ['192.0.2.1:1'] } }, 3);
    jest.advanceTimersByTime(25);
    const d = compact[0]!;
    expect(d.upsert.map((p) => [p.id, p.online, p.endpoints])).toEqual([[a.id, true, ['192.0.2.1:1']]]);
    expect(d.online).toBeUndefined();
    expect(d.offline).toBeUndefined();
  });
});
