import { formatIpv4, parseIpv4 } from '../ipv4';
import { type Parsed, parsed, rejected } from '../types';

// PCP (RFC 6887) ANNOUNCE and MAP for UDP over IPv4. Addresses travel as IPv4-mapped IPv6.
// Responses are parsed strictly: version 2, the response bit with our opcode, 4-byte alignment,
// at most 1100 bytes, well-formed options, and for MAP our nonce, protocol and internal port.

export const PCP_PORT = 5351;
export const PCP_VERSION = 2;
export const OP_ANNOUNCE = 0;
export const OP_MAP = 1;
const UDP = 17;
const HEADER = 24;
const MAP_BODY = 36;
const MAX_MESSAGE = 1100;

export const PCP_RESULTS: Record<number, string> = {
  1: 'UNSUPP_VERSION',
  2: 'NOT_AUTHORIZED',
  3: 'MALFORMED_REQUEST',
  4: 'UNSUPP_OPCODE',
  5: 'UNSUPP_OPTION',
  6: 'MALFORMED_OPTION',
  7: 'NETWORK_FAILURE',
  8: 'NO_RESOURCES',
  9: 'UNSUPP_PROTOCOL',
  10: 'USER_EX_QUOTA',
  11: 'CANNOT_PROVIDE_EXTERNAL',
  12: 'ADDRESS_MISMATCH',
  13: 'EXCESSIVE_REMOTE_PEERS',
};

function writeMappedIpv4(buf: Buffer, offset: number, ip: string): void {
  const bytes = parseIpv4(ip) ?? new Uint8Array(4);
  buf.fill(0, offset, offset + 10);
  buf.writeUInt16BE(0xffff, offset + 10);
  buf.set(bytes, offset + 12);
}

function readMappedIpv4(message: Uint8Array, offset: number): string | undefined {
  for (let i = 0; i < 10; i++) if (message[offset + i] !== 0) return undefined;
  if (message[offset + 10] !== 0xff || message[offset + 11] !== 0xff) return undefined;
  return formatIpv4(message.subarray(offset + 12, offset + 16));
}

function encodeHeader(opcode: number, lifetime: number, clientIp: string, bodyLength: number): Buffer {
  const buf = Buffer.alloc(HEADER + bodyLength);
  buf.writeUInt8(PCP_VERSION, 0);
  buf.writeUInt8(opcode, 1);
  buf.writeUInt32BE(lifetime, 4);
  writeMappedIpv4(buf, 8, clientIp);
  return buf;
}

export function encodeAnnounceRequest(clientIp: string): Uint8Array {
  return encodeHeader(OP_ANNOUNCE, 0, clientIp, 0);
}

export interface MapRequest {
  clientIp: string;
  nonce: Uint8Array; // 12 bytes
  internalPort: number;
  suggestedPort: number;
  suggestedIp?: string;
  lifetime: number;
}

export function encodeMapRequest(request: MapRequest): Uint8Array {
  const buf = encodeHeader(OP_MAP, request.lifetime, request.clientIp, MAP_BODY);
  buf.set(request.nonce.subarray(0, 12), HEADER);
  buf.writeUInt8(UDP, HEADER + 12);
  buf.writeUInt16BE(request.internalPort, HEADER + 16);
  buf.writeUInt16BE(request.suggestedPort, HEADER + 18);
  writeMappedIpv4(buf, HEADER + 20, request.suggestedIp ?? '0.0.0.0');
  return buf;
}

export interface PcpResponseHeader {
  opcode: number;
  resultCode: number;
  lifetime: number;
  epoch: number;
}

export interface PcpMapResponse extends PcpResponseHeader {
  nonce: Uint8Array;
  internalPort: number;
  externalPort: number;
  externalIp: string;
}

function parseOptions(message: Uint8Array, offset: number): Parsed<null> {
  let at = offset;
  while (at < message.length) {
    if (at + 4 > message.length) return rejected('truncated option header');
    const code = message[at]!;
    const length = (message[at + 2]! << 8) | message[at + 3]!;
    const padded = (length + 3) & ~3;
    if (at + 4 + padded > message.length) return rejected('truncated option');
    // We send no options, so a mandatory-to-process one (code < 128) cannot be a sensible answer.
    if (code < 128) return rejected(`unexpected mandatory option ${code}`);
    at += 4 + padded;
  }
  return parsed(null);
}

export function parseResponseHeader(message: Uint8Array, opcode: number): Parsed<PcpResponseHeader> {
  if (message.length < HEADER) return rejected('too short');
  if (message.length > MAX_MESSAGE) return rejected('too long');
  if (message.length % 4 !== 0) return rejected('not a multiple of 4 bytes');
  if (message[0] !== PCP_VERSION) return rejected(`version ${message[0]}`);
  if (message[1] !== (0x80 | opcode)) return rejected(`opcode byte ${message[1]}`);
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  return parsed({
    opcode,
    resultCode: message[3]!,
    lifetime: view.getUint32(4),
    epoch: view.getUint32(8),
  });
}

export function parseAnnounceResponse(message: Uint8Array): Parsed<PcpResponseHeader> {
  const head = parseResponseHeader(message, OP_ANNOUNCE);
  if (!head.ok) return head;
  const options = parseOptions(message, HEADER);
  return options.ok ? head : options;
}

export function parseMapResponse(
  message: Uint8Array,
  expected: { nonce: Uint8Array; internalPort: number },
): Parsed<PcpMapResponse> {
  const head = parseResponseHeader(message, OP_MAP);
  if (!head.ok) return head;
  // Error responses may omit the opcode body only when the request itself was unparseable; a MAP
  // reply to our well-formed request always carries it (RFC 6887 §7.2).
  if (message.length < HEADER + MAP_BODY) return rejected('missing MAP body');
  const nonce = message.subarray(HEADER, HEADER + 12);
  if (!Buffer.from(nonce).equals(Buffer.from(expected.nonce))) return rejected('nonce mismatch');
  if (message[HEADER + 12] !== UDP) return rejected(`protocol ${message[HEADER + 12]}`);
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const internalPort = view.getUint16(HEADER + 16);
  if (internalPort !== expected.internalPort) return rejected('internal port mismatch');
  const externalIp = readMappedIpv4(message, HEADER + 20);
  if (externalIp === undefined) return rejected('external address not IPv4-mapped');
  const options = parseOptions(message, HEADER + MAP_BODY);
  if (!options.ok) return options;
  return parsed({
    ...head.value,
    nonce: Uint8Array.from(nonce),
    internalPort,
    externalPort: view.getUint16(HEADER + 18),
    externalIp,
  });
}
