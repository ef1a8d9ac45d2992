/** The broker refused a key rotation (it closed with rotationRefused): its key did not change. */
export class KeyRotationRefused extends Error {}

interface Outstanding {
  newKey: string;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * The one `rotate-key` a control connection may have outstanding: settled by the broker's
 * `key-rotated`, or by the connection's end (a refusal, or no answer: the outcome is then unknown).
 */
export class RotationRequest {
  private outstanding: Outstanding | null = null;

  get busy(): boolean {
    return this.outstanding !== null;
  }

  start(newKey: string): Promise<void> {
    if (this.outstanding)
      return Promise.reject(new Error('a key rotation is already waiting for the broker'));
    return new Promise<void>((resolve, reject) => {
      this.outstanding = { newKey, resolve, reject };
    });
  }

  /** A `key-rotated` frame; false when it answers nothing we asked. */
  answered(newKey: string): boolean {
    const o = this.outstanding;
    if (!o || o.newKey !== newKey) return false;
    this.outstanding = null;
    o.resolve();
    return true;
  }

  fail(err: Error): void {
    const o = this.outstanding;
    this.outstanding = null;
    o?.reject(err);
  }
}
