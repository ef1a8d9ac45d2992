import { MESSAGE_TRANSPORT, REJECT_AFTER_MESSAGES, TRANSPORT_HEADER_LENGTH } from './constants';
import type { SessionKeys } from './handshake';
import { parseTransportHeader, writeHeader, writeUint32 } from './messages';
import { aeadOpen, aeadSeal, EMPTY } from './primitives';

// Transport data messages (whitepaper 5.4.6): header, then the payload sealed with the session key
// and the 64-bit counter as nonce, no additional data. A keepalive is one with an empty payload.

export function sealTransport(
  session: SessionKeys,
  counter: bigint,
  payload: Uint8Array = EMPTY,
): Uint8Array {
  const sealed = aeadSeal(session.sendKey, counter, payload, EMPTY);
  const packet = new Uint8Array(TRANSPORT_HEADER_LENGTH + sealed.length);
  writeHeader(packet, MESSAGE_TRANSPORT);
  writeUint32(packet, 4, session.remoteIndex);
  new DataView(packet.buffer).setBigUint64(8, counter, true);
  packet.set(sealed, TRANSPORT_HEADER_LENGTH);
  return packet;
}

/**
 * Authenticates and decrypts a transport message addressed to this session. Returns null when the
 * message is not for this session or fails authentication; replay checks are the caller's
 * (see ReplayWindow), done only after authentication so forged counters cannot move the window.
 */
export function openTransport(
  session: SessionKeys,
  packet: Uint8Array,
): { counter: bigint; payload: Uint8Array } | null {
  const header = parseTransportHeader(packet);
  if (!header || header.receiverIndex !== session.localIndex) return null;
  if (header.counter >= REJECT_AFTER_MESSAGES) return null;
  const payload = aeadOpen(
    session.receiveKey,
    header.counter,
    packet.subarray(TRANSPORT_HEADER_LENGTH),
    EMPTY,
  );
  return payload ? { counter: header.counter, payload } : null;
}

/** Sliding-window counter replay filter in the spirit of RFC 6479: accepts each counter once. */
export class ReplayWindow {
  private highest = -1n;
  private seen = 0n;

  constructor(private readonly size: bigint = 64n) {}

  /** Records `counter` and returns true if it is new and not too old; false for a replay. */
  accept(counter: bigint): boolean {
    if (counter > this.highest) {
      const shift = counter - this.highest;
      this.seen = shift >= this.size ? 1n : ((this.seen << shift) | 1n) & ((1n << this.size) - 1n);
      this.highest = counter;
      return true;
    }
    const age = this.highest - counter;
    if (age >= this.size) return false;
    const bit = 1n << age;
    if (this.seen & bit) return false;
    this.seen |= bit;
    return true;
  }
}
