import { type KeyPair, signKeyRotation } from '@trellis/crypto';
import type { Logger } from 'pino';
import type { ControlClient } from '../control/control-client';
import { KeyRotationRefused } from '../control/rotation-request';
import type { Enrollment, StateStore } from '../state/state-store';
import { UserError } from '../util/user-error';

type RotatingControl = Pick<ControlClient, 'rotateKey' | 'setFallbackKey'>;

/**
 * The device's WireGuard key, and the new key of a rotation whose outcome is not known yet.
 *
 * A rotation writes the new key as pending (private.key.pending) before the broker hears of it, and
 * makes it private.key only after the broker's `key-rotated`. A crash in between leaves both files,
 * and the broker holds exactly one of the two keys:
 * - the broker changes the key in one transaction, and only for the connection that still holds
 *   the device under the old key (rotateDeviceKey);
 * - it marks a connection online only under the key that connection proved (markOnline), which
 *   moves the device to that connection in the same statement.
 * So if the broker refuses the old key it holds the pending one (nothing else could have put it
 * there), and the pending key becomes the device key. Once a connection under the old key is
 * online, the rotation can never commit any more, and the pending key is dropped. The control
 * client tries the current key first and the other one each time the broker refuses a key.
 */
export class DeviceKeys {
  private constructor(
    private readonly store: StateStore,
    public current: KeyPair,
    public pending: KeyPair | null,
  ) {}

  static async load(store: StateStore): Promise<DeviceKeys> {
    const current = await store.loadOrCreateKeyPair();
    let pending = await store.loadPendingKey();
    if (pending?.publicKey === current.publicKey) {
      await store.dropPendingKey();
      pending = null;
    }
    return new DeviceKeys(store, current, pending);
  }

  /**
   * Rotates over `control` (connected): resolves with the new key once the broker holds it (then
   * commit()). A refusal drops the new key; with no answer it stays pending, tried as the fallback.
   * Either failure is a UserError that says which it was.
   */
  async rotate(enrollment: Enrollment, control: RotatingControl): Promise<KeyPair> {
    const { pending, signature } = await this.startRotation(enrollment);
    control.setFallbackKey(pending);
    try {
      await control.rotateKey(pending.publicKey, signature);
    } catch (err) {
      const why = (err as Error).message;
      if (err instanceof KeyRotationRefused) {
        control.setFallbackKey(null);
        await this.drop();
        throw new UserError(`the broker refused the key rotation: ${why}`);
      }
      throw new UserError(
        `the broker did not confirm the key rotation (${why}); the agent takes the key it holds ` +
          'when it reconnects (see `trellis status`)',
      );
    }
    return pending;
  }

  /**
   * The broker accepted a connection under `publicKey`: true when that is the pending key (the
   * caller commits it); the current key means the pending one can never be taken, and it is dropped.
   */
  async settle(publicKey: string, control: RotatingControl | undefined, log: Logger): Promise<boolean> {
    const pending = this.pending;
    if (!pending) return false;
    if (publicKey === pending.publicKey) {
      log.warn({ publicKey }, 'the broker holds the pending key of an unfinished rotation: using it');
      return true;
    }
    if (publicKey !== this.current.publicKey) return false;
    log.warn({ dropped: pending.publicKey }, 'the broker never took the pending key: dropped');
    control?.setFallbackKey(null);
    await this.drop();
    return false;
  }

  /** A new pending key, on disk before this returns, and the current key's signature over it. */
  private async startRotation(enrollment: Enrollment): Promise<{ pending: KeyPair; signature: string }> {
    if (this.pending) throw new Error('a key rotation is still unresolved');
    const pending = await this.store.createPendingKey();
    this.pending = pending;
    const signature = signKeyRotation(this.current.privateKey, {
      deviceId: enrollment.deviceId,
      address: enrollment.address,
      previousKey: this.current.publicKey,
      newKey: pending.publicKey,
    });
    return { pending, signature };
  }

  /** The broker holds the pending key: it becomes the device key. */
  async commit(): Promise<KeyPair> {
    const pending = this.pending;
    if (!pending) throw new Error('no pending key');
    await this.store.commitPendingKey();
    this.current = pending;
    this.pending = null;
    return pending;
  }

  /** The broker never took (and now never will take) the pending key. */
  async drop(): Promise<void> {
    if (!this.pending) return;
    await this.store.dropPendingKey();
    this.pending = null;
  }
}
