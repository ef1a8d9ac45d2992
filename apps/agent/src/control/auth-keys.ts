import type { KeyPair } from '@trellis/crypto';
import { ControlHandshake } from './control-handshake';

/**
 * The key control connections authenticate with, and the one to try instead when the broker
 * refuses it (a rotation whose outcome the agent does not know).
 */
export class AuthKeys {
  private fallback: KeyPair | null = null;
  private current: KeyPair;
  /** The handshake for `current`. */
  handshake: ControlHandshake;

  constructor(
    private readonly deviceId: string,
    key: KeyPair,
    private readonly brokerPublicKey: string,
  ) {
    this.current = key;
    this.handshake = new ControlHandshake(deviceId, key, brokerPublicKey);
  }

  get key(): KeyPair {
    return this.current;
  }

  setFallback(key: KeyPair | null): void {
    this.fallback = key;
  }

  /** Makes the fallback the key in use (and the key in use the fallback); null when there is none. */
  swap(): KeyPair | null {
    const other = this.fallback;
    if (!other) return null;
    this.fallback = this.current;
    this.current = other;
    this.handshake = new ControlHandshake(this.deviceId, other, this.brokerPublicKey);
    return other;
  }
}
