import fc from 'fast-check';
import { type PollResult, SignInPoller } from '../src/sign-in/sign-in-poller';

const enrolled = {
  deviceId: '5b0c8a7e-7a43-4d2c-9b1e-3f7a1d2c4e5f',
  accountId: 'a',
  accountName: 'acme',
  name: 'laptop',
  dnsName: 'laptop.acme.example',
  address: '100.64.0.1',
  overlayPrefix: '100.64.0.0/10' as const,
  brokerPublicKey: `${'x'.repeat(43)}=`,
  approved: true,
};
const refused = (code: string): PollResult => ({ kind: 'refused', code, message: code });

describe('SignInPoller', () => {
  it('waits the interval before each poll and hands out the enrollment once granted', () => {
    const p = new SignInPoller({ interval: 5, expiresIn: 600 }, 0);
    expect(p.next(0)).toEqual({ kind: 'wait', ms: 5_000 });
    expect(p.next(5_000)).toEqual({ kind: 'poll' });
    p.onResult(refused('authorization_pending'), 5_100);
    expect(p.next(5_100)).toEqual({ kind: 'wait', ms: 5_000 });
    expect(p.next(10_100)).toEqual({ kind: 'poll' });
    p.onResult({ kind: 'granted', response: enrolled }, 10_200);
    expect(p.next(10_200)).toEqual({ kind: 'granted', response: enrolled });
  });

  it('slow_down adds 5 s to the interval for good; an unreachable broker is polled again at the interval', () => {
    const p = new SignInPoller({ interval: 5, expiresIn: 600 }, 0);
    p.next(5_000);
    p.onResult(refused('slow_down'), 5_000);
    expect(p.next(5_000)).toEqual({ kind: 'wait', ms: 10_000 });
    p.next(15_000);
    p.onResult({ kind: 'unreachable', message: 'ECONNREFUSED' }, 15_000);
    expect(p.next(15_000)).toEqual({ kind: 'wait', ms: 10_000 });
  });

  it('stops on access_denied, expired_token and anything else the broker refuses with', () => {
    for (const [code, reason] of [
      ['access_denied', /denied/],
      ['expired_token', /expired or was used/],
      ['rate_limited', /refused the sign-in/],
    ] as const) {
      const p = new SignInPoller({ interval: 1, expiresIn: 60 }, 0);
      p.next(1_000);
      p.onResult(refused(code), 1_000);
      expect(p.next(1_000)).toEqual({ kind: 'failed', reason: expect.stringMatching(reason) });
    }
  });

  it('gives up when the codes expire, saying what the last poll met', () => {
    const p = new SignInPoller({ interval: 5, expiresIn: 12 }, 0);
    p.next(5_000);
    p.onResult({ kind: 'unreachable', message: 'ETIMEDOUT' }, 5_000);
    p.next(10_000);
    p.onResult({ kind: 'unreachable', message: 'ETIMEDOUT' }, 10_000);
    // The wait is cut at the expiry, and then it fails.
    expect(p.next(10_000)).toEqual({ kind: 'wait', ms: 2_000 });
    expect(p.next(12_000)).toEqual({ kind: 'failed', reason: expect.stringMatching(/expired .*ETIMEDOUT/) });
  });

  it('property: polls are never closer than the interval in force, never after expiry, and it always ends', () => {
    const result = fc.oneof(
      fc.constant(refused('authorization_pending')),
      fc.constant(refused('slow_down')),
      fc.constant<PollResult>({ kind: 'unreachable', message: 'down' }),
      fc.constant(refused('access_denied')),
      fc.constant<PollResult>({ kind: 'granted', response: enrolled }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 900 }),
        fc.array(fc.tuple(result, fc.integer({ min: 0, max: 3_000 })), { maxLength: 200 }),
        (interval, expiresIn, script) => {
          const p = new SignInPoller({ interval, expiresIn }, 0);
          let now = 0;
          let intervalMs = interval * 1000;
          let lastAnswer = 0;
          for (let i = 0; ; i++) {
            const step = p.next(now);
            if (step.kind === 'granted' || step.kind === 'failed') return;
            if (step.kind === 'wait') {
              expect(step.ms).toBeGreaterThan(0);
              now += step.ms;
              continue;
            }
            expect(now - lastAnswer).toBeGreaterThanOrEqual(intervalMs);
            expect(now).toBeLessThan(expiresIn * 1000);
            const [r, latency] = script[i % Math.max(1, script.length)] ?? [
              refused('authorization_pending'),
              0,
            ];
            now += latency;
            p.onResult(r, now);
            lastAnswer = now;
            if (r.kind === 'refused' && r.code === 'slow_down') intervalMs += 5_000;
            if (i > 10_000) throw new Error('never ended');
          }
        },
      ),
    );
  });
});
