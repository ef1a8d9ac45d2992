import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  generateKeyPair,
  type SessionKeys,
  type StaticKeyPair,
  sealTransport,
} from '@trellis/noise';

export function keyBase64(pair: StaticKeyPair): string {
  return Buffer.from(pair.publicKey).toString('base64');
}

/**
 * Two WireGuard devices as packages/noise builds them: real initiations, responses and transport
 * packets, so the relay's mac1 binding is exercised on what a device would really send.
 */
export class WireGuardPair {
  readonly a = generateKeyPair();
  readonly b = generateKeyPair();
  private nextIndex = 1;

  get keys(): [string, string] {
    return [keyBase64(this.a), keyBase64(this.b)];
  }

  /** An initiation from `from` to the other device (mac1 keyed by the other's public key). */
  initiation(from: 'a' | 'b' = 'a'): Uint8Array {
    const [local, remote] = from === 'a' ? [this.a, this.b] : [this.b, this.a];
    return createInitiation(local, remote.publicKey, { senderIndex: this.nextIndex++ }).packet;
  }

  /** A full handshake a → b; returns both packets and both sessions. */
  handshake(): { initiation: Uint8Array; response: Uint8Array; a: SessionKeys; b: SessionKeys } {
    const init = createInitiation(this.a, this.b.publicKey, { senderIndex: this.nextIndex++ });
    const consumed = consumeInitiation(this.b, init.packet);
    if (!consumed.ok) throw new Error(`initiation refused: ${consumed.reason}`);
    const response = createResponse(consumed.state, { senderIndex: this.nextIndex++ });
    const done = consumeResponse(init.state, response.packet);
    if (!done.ok) throw new Error(`response refused: ${done.reason}`);
    return { initiation: init.packet, response: response.packet, a: done.session, b: response.session };
  }
}

/** A valid-mac1 initiation to `receiverPublicKey` from a stranger: what anyone can forge. */
export function forgedInitiation(receiverPublicKey: Uint8Array): Uint8Array {
  return createInitiation(generateKeyPair(), receiverPublicKey, { senderIndex: 99 }).packet;
}

export { sealTransport };
