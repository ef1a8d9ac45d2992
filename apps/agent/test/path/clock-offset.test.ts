import { ClockOffsetEstimator } from '../../src/path';

describe('ClockOffsetEstimator', () => {
  it('knows nothing before the first sample and then treats clocks as synced', () => {
    const c = new ClockOffsetEstimator();
    expect(c.offsetMs).toBeNull();
    expect(c.rttMs).toBeNull();
    expect(c.toLocal(5000)).toBe(5000);
  });

  it('takes the NTP midpoint offset of the sample with the smallest round trip', () => {
    const c = new ClockOffsetEstimator();
    // Broker is 1000 ms ahead. Sample 1: slow, asymmetric (the pong sat 300 ms in a queue).
    c.addSample({ sentAt: 10_000, serverTime: 11_020, receivedAt: 10_340 });
    expect(c.offsetMs).toBe(11_020 - 10_170);
    // Sample 2: 20 ms RTT, symmetric: exact.
    c.addSample({ sentAt: 20_000, serverTime: 21_010, receivedAt: 20_020 });
    expect(c.offsetMs).toBe(1000);
    expect(c.rttMs).toBe(20);
    // A later slower sample does not displace the tight one.
    c.addSample({ sentAt: 30_000, serverTime: 31_200, receivedAt: 30_250 });
    expect(c.offsetMs).toBe(1000);
    expect(c.toLocal(50_000)).toBe(49_000);
    expect(c.toServer(49_000)).toBe(50_000);
  });

  it('rejects impossible samples', () => {
    const c = new ClockOffsetEstimator({ maxRttMs: 5000 });
    expect(c.addSample({ sentAt: 100, serverTime: 50, receivedAt: 90 })).toBe(false);
    expect(c.addSample({ sentAt: 100, serverTime: 50, receivedAt: 6000 })).toBe(false);
    expect(c.addSample({ sentAt: 100, serverTime: Number.NaN, receivedAt: 110 })).toBe(false);
    expect(c.offsetMs).toBeNull();
  });

  it('forgets samples beyond its window so clock drift is followed', () => {
    const c = new ClockOffsetEstimator({ window: 3 });
    c.addSample({ sentAt: 0, serverTime: 505, receivedAt: 10 }); // offset 500, rtt 10
    for (let i = 1; i <= 3; i++)
      c.addSample({ sentAt: i * 1000, serverTime: i * 1000 + 640, receivedAt: i * 1000 + 80 });
    expect(c.offsetMs).toBe(600);
    expect(c.rttMs).toBe(80);
  });
});
