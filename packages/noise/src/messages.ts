import {
  INITIATION_LENGTH,
  KEEPALIVE_LENGTH,
  KEY_LENGTH,
  MAC_LENGTH,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_LENGTH,
  TAG_LENGTH,
  TIMESTAMP_LENGTH,
} from './constants';

// Strict parsers for WireGuard's message layouts (whitepaper 5.4.2, 5.4.3, 5.4.6). Every field is a
// copy, so callers may keep parsed messages after the packet buffer is reused.

export interface InitiationMessage {
  senderIndex: number;
  ephemeral: Uint8Array;
  encryptedStatic: Uint8Array;
  encryptedTimestamp: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface ResponseMessage {
  senderIndex: number;
  receiverIndex: number;
  ephemeral: Uint8Array;
  encryptedNothing: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface TransportHeader {
  receiverIndex: number;
  counter: bigint;
}

/** Byte offsets inside a handshake initiation. */
export const INITIATION_OFFSETS = {
  senderIndex: 4,
  ephemeral: 8,
  encryptedStatic: 40,
  encryptedTimestamp: 88,
  mac1: 116,
  mac2: 132,
} as const;

/** Byte offsets inside a handshake response. */
export const RESPONSE_OFFSETS = {
  senderIndex: 4,
  receiverIndex: 8,
  ephemeral: 12,
  encryptedNothing: 44,
  mac1: 60,
  mac2: 76,
} as const;

function view(packet: Uint8Array): DataView {
  return new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
}

/** True when the first 4 bytes are `type` followed by three reserved zero bytes. */
function hasHeader(packet: Uint8Array, type: number): boolean {
  return packet[0] === type && packet[1] === 0 && packet[2] === 0 && packet[3] === 0;
}

function slice(packet: Uint8Array, at: number, length: number): Uint8Array {
  return packet.slice(at, at + length);
}

/** A handshake initiation (type 1, exactly 148 bytes), or null for anything else. */
export function parseInitiation(packet: Uint8Array): InitiationMessage | null {
  if (!(packet instanceof Uint8Array) || packet.length !== INITIATION_LENGTH) return null;
  if (!hasHeader(packet, MESSAGE_INITIATION)) return null;
  const o = INITIATION_OFFSETS;
  return {
    senderIndex: view(packet).getUint32(o.senderIndex, true),
    ephemeral: slice(packet, o.ephemeral, KEY_LENGTH),
    encryptedStatic: slice(packet, o.encryptedStatic, KEY_LENGTH + TAG_LENGTH),
    encryptedTimestamp: slice(packet, o.encryptedTimestamp, TIMESTAMP_LENGTH + TAG_LENGTH),
    mac1: slice(packet, o.mac1, MAC_LENGTH),
    mac2: slice(packet, o.mac2, MAC_LENGTH),
  };
}

/** A handshake response (type 2, exactly 92 bytes), or null for anything else. */
export function parseResponse(packet: Uint8Array): ResponseMessage | null {
  if (!(packet instanceof Uint8Array) || packet.length !== RESPONSE_LENGTH) return null;
  if (!hasHeader(packet, MESSAGE_RESPONSE)) return null;
  const o = RESPONSE_OFFSETS;
  const v = view(packet);
  return {
    senderIndex: v.getUint32(o.senderIndex, true),
    receiverIndex: v.getUint32(o.receiverIndex, true),
    ephemeral: slice(packet, o.ephemeral, KEY_LENGTH),
    encryptedNothing: slice(packet, o.encryptedNothing, TAG_LENGTH),
    mac1: slice(packet, o.mac1, MAC_LENGTH),
    mac2: slice(packet, o.mac2, MAC_LENGTH),
  };
}

/** The header of a transport message (type 4, at least header + tag), or null. */
export function parseTransportHeader(packet: Uint8Array): TransportHeader | null {
  if (!(packet instanceof Uint8Array) || packet.length < KEEPALIVE_LENGTH) return null;
  if (!hasHeader(packet, MESSAGE_TRANSPORT)) return null;
  const v = view(packet);
  return { receiverIndex: v.getUint32(4, true), counter: v.getBigUint64(8, true) };
}

export function writeHeader(packet: Uint8Array, type: number): void {
  packet[0] = type;
  packet[1] = 0;
  packet[2] = 0;
  packet[3] = 0;
}

export function writeUint32(packet: Uint8Array, at: number, value: number): void {
  view(packet).setUint32(at, value >>> 0, true);
}
