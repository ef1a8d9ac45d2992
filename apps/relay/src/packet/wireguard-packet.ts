import {
  INITIATION_LENGTH,
  KEEPALIVE_LENGTH,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_LENGTH,
} from '@trellis/noise';

/** What a datagram is to the relay. Numbers, not strings: this runs once per forwarded packet. */
export const PacketKind = {
  malformed: 0,
  initiation: 1,
  response: 2,
  cookieReply: 3,
  transport: 4,
} as const;
export type PacketKind = (typeof PacketKind)[keyof typeof PacketKind];

export const COOKIE_REPLY_LENGTH = 64;

/**
 * WireGuard message type and exact length (whitepaper 5.4): type byte, three zero reserved bytes,
 * then initiation 148, response 92, cookie reply 64, transport at least header + tag.
 * Transport lengths are NOT required to be 16-byte aligned: WireGuard caps the padding at the tunnel
 * MTU (wireguard-go calculatePaddingSize, the kernel likewise), so with the default MTU 1420 every
 * full-size packet is 1452 bytes, 12 past a multiple of 16. Nothing is authenticated here; see
 * AllocationCore for mac1.
 */
export function classifyPacket(packet: Uint8Array): PacketKind {
  const length = packet.length;
  if (length < 4 || packet[1] !== 0 || packet[2] !== 0 || packet[3] !== 0) return PacketKind.malformed;
  switch (packet[0]) {
    case MESSAGE_TRANSPORT:
      return length >= KEEPALIVE_LENGTH ? PacketKind.transport : PacketKind.malformed;
    case MESSAGE_INITIATION:
      return length === INITIATION_LENGTH ? PacketKind.initiation : PacketKind.malformed;
    case MESSAGE_RESPONSE:
      return length === RESPONSE_LENGTH ? PacketKind.response : PacketKind.malformed;
    case MESSAGE_COOKIE_REPLY:
      return length === COOKIE_REPLY_LENGTH ? PacketKind.cookieReply : PacketKind.malformed;
    default:
      return PacketKind.malformed;
  }
}
