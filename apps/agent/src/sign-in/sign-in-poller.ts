import type { DeviceTokenError, EnrollResponse } from '@trellis/proto';

/** What one poll of the broker came back with. */
export type PollResult =
  | { kind: 'granted'; response: EnrollResponse }
  | { kind: 'refused'; code: DeviceTokenError | string; message: string }
  /** No answer (network, TLS, 5xx): tried again at the next interval, until the codes expire. */
  | { kind: 'unreachable'; message: string };

/** What the shell does next. */
export type PollStep =
  | { kind: 'poll' }
  | { kind: 'wait'; ms: number }
  | { kind: 'granted'; response: EnrollResponse }
  | { kind: 'failed'; reason: string };

const SLOW_DOWN_STEP_MS = 5_000;

type Phase =
  | { kind: 'waiting'; pollAt: number; intervalMs: number; lastError: string | null }
  | { kind: 'polling'; intervalMs: number }
  | { kind: 'granted'; response: EnrollResponse }
  | { kind: 'failed'; reason: string };

/**
 * The device side of RFC 8628's polling, sans IO: poll every `interval`, 5 s slower after each
 * `slow_down`, stop on `access_denied` or `expired_token`, or when the codes expire. The shell asks
 * `next(now)` what to do and reports each poll's result with `onResult`.
 */
export class SignInPoller {
  private phase: Phase;

  constructor(
    started: { interval: number; expiresIn: number },
    now: number,
    private readonly expiresAt = now + started.expiresIn * 1000,
  ) {
    const intervalMs = started.interval * 1000;
    this.phase = { kind: 'waiting', pollAt: now + intervalMs, intervalMs, lastError: null };
  }

  next(now: number): PollStep {
    const p = this.phase;
    switch (p.kind) {
      case 'granted':
        return { kind: 'granted', response: p.response };
      case 'failed':
        return { kind: 'failed', reason: p.reason };
      case 'polling':
        throw new Error('a poll is under way: report its result first');
      case 'waiting':
        if (now >= this.expiresAt) {
          const why = p.lastError ? ` (last poll: ${p.lastError})` : '';
          this.phase = { kind: 'failed', reason: `the sign-in code expired before it was approved${why}` };
          return this.next(now);
        }
        if (now < p.pollAt) return { kind: 'wait', ms: Math.min(p.pollAt, this.expiresAt) - now };
        this.phase = { kind: 'polling', intervalMs: p.intervalMs };
        return { kind: 'poll' };
    }
  }

  onResult(result: PollResult, now: number): void {
    const p = this.phase;
    if (p.kind !== 'polling') throw new Error(`a poll result while ${p.kind}`);
    const waitAgain = (intervalMs: number, lastError: string | null) => {
      this.phase = { kind: 'waiting', pollAt: now + intervalMs, intervalMs, lastError };
    };
    if (result.kind === 'granted') {
      this.phase = { kind: 'granted', response: result.response };
    } else if (result.kind === 'unreachable') {
      waitAgain(p.intervalMs, result.message);
    } else if (result.code === 'authorization_pending') {
      waitAgain(p.intervalMs, null);
    } else if (result.code === 'slow_down') {
      waitAgain(p.intervalMs + SLOW_DOWN_STEP_MS, null);
    } else if (result.code === 'access_denied') {
      this.phase = { kind: 'failed', reason: 'the sign-in was denied' };
    } else if (result.code === 'expired_token') {
      this.phase = {
        kind: 'failed',
        reason: `the sign-in code expired or was used already: ${result.message}`,
      };
    } else {
      this.phase = { kind: 'failed', reason: `the broker refused the sign-in: ${result.message}` };
    }
  }
}
