import type { Timers } from './timers';

/** The broker refused a key rotation (it closed with rotationRefused): its key did not change. */
/** How long a `rotate-key` waits for the broker's answer before the connection is given up. */
export const ROTATION_ANSWER_MS = 15_000;

export class KeyRotationRefused extends Error {}

interface Outstanding {
  newKey: string;
  resolve(): void;
  reject(err: Error): void;
  /** Fires when the broker took too long; null once fired. */
  timer: unknown;
}

/**
 * The one `rotate-key` a control connection may have outstanding: settled by the broker's
 * `key-rotated`, or by the connection's end (a refusal, or no answer: the outcome is then unknown).
 */
export class RotationRequest {
  private outstanding: Outstanding | null = null;

  constructor(private readonly timers: Timers) {}

  get busy(): boolean {
    return this.outstanding !== null;
  }

  /**
   * Waits for the answer to a rotation to `newKey`. `onTimeout` runs if none came within
   * `timeoutMs`; the caller then ends the connection, which settles this with fail().
   */
  start(newKey: string, timeoutMs: number, onTimeout: () => void): Promise<void> {
    if (this.outstanding)
      return Promise.reject(new Error('a key rotation is already waiting for the broker'));
    return new Promise<void>((resolve, reject) => {
      const o: Outstanding = { newKey, resolve, reject, timer: null };
      o.timer = this.timers.setTimeout(() => {
        o.timer = null;
        onTimeout();
      }, timeoutMs);
      this.outstanding = o;
    });
  }

  /** A `key-rotated` frame; false when it answers nothing we asked. */
  answered(newKey: string): boolean {
    const o = this.outstanding;
    if (!o || o.newKey !== newKey) return false;
    this.settle();
    o.resolve();
    return true;
  }

  fail(err: Error): void {
    this.settle()?.reject(err);
  }

  private settle(): Outstanding | null {
    const o = this.outstanding;
    this.outstanding = null;
    if (o && o.timer !== null) this.timers.clearTimeout(o.timer);
    return o;
  }
}
