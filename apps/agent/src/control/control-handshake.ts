import { DeviceAuthenticator, type KeyPair, newNonce } from '@trellis/crypto';
import {
  CAPABILITY_VERSION,
  type ChallengeMessage,
  type ClientMessage,
  type HelloMessage,
} from '@trellis/proto';

/**
 * The device's side of a connection's mutual authentication: hello with a fresh nonce, then the
 * broker's challenge must prove the broker key pinned at enrollment before we prove our own key.
 */
export class ControlHandshake {
  private readonly auth: DeviceAuthenticator;
  private clientNonce = '';

  constructor(
    private readonly deviceId: string,
    private readonly keyPair: KeyPair,
    brokerPublicKey: string,
  ) {
    this.auth = new DeviceAuthenticator(keyPair.privateKey, keyPair.publicKey, brokerPublicKey);
  }

  /**
   * A connection's first message, with a new nonce. `lastSerial` keeps the broker's serials above
   * the netmap held; with `resume` the broker may answer with a delta on top of that netmap.
   * `version`: our capability version, or a lower one this broker takes (CapabilityFallback).
   */
  hello(lastSerial: number | undefined, resume?: string, version = CAPABILITY_VERSION): HelloMessage {
    this.clientNonce = newNonce();
    const hello: HelloMessage = {
      type: 'hello',
      protocolVersion: version,
      deviceId: this.deviceId,
      publicKey: this.keyPair.publicKey,
      clientNonce: this.clientNonce,
    };
    if (lastSerial !== undefined) hello.lastSerial = lastSerial;
    if (lastSerial !== undefined && resume !== undefined) hello.resume = resume;
    return hello;
  }

  /** Our proof for the broker's challenge; null when the broker failed to prove its key. */
  answer(challenge: ChallengeMessage): ClientMessage | null {
    if (!this.auth.verifyBroker(challenge.brokerProof, this.clientNonce, challenge.brokerNonce)) return null;
    return { type: 'auth', proof: this.auth.deviceProof(this.clientNonce, challenge.brokerNonce) };
  }
}
