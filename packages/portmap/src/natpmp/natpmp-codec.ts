import { formatIpv4 } from '../ipv4';
import { type Parsed, parsed, rejected } from '../types';

// NAT-PMP (RFC 6886) messages, UDP only. Responses are parsed strictly: exact length, version 0,
// the opcode we asked for + 128, and a success result code (others are reported by number).

export const NATPMP_PORT = 5351;
const OP_EXTERNAL_ADDRESS = 0;
const OP_MAP_UDP = 1;

export const NATPMP_RESULTS: Record<number, string> = {
  1: 'unsupported version',
  2: 'not authorized/refused',
  3: 'network failure',
  4: 'out of resources',
  5: 'unsupported opcode',
};

export function encodeExternalAddressRequest(): Uint8Array {
  return Uint8Array.of(0, OP_EXTERNAL_ADDRESS);
}

export function encodeMapRequest(internalPort: number, suggestedPort: number, lifetime: number): Uint8Array {
  const buf = Buffer.alloc(12);
  buf.writeUInt8(0, 0);
  buf.writeUInt8(OP_MAP_UDP, 1);
  buf.writeUInt16BE(internalPort, 4);
  buf.writeUInt16BE(suggestedPort, 6);
  buf.writeUInt32BE(lifetime, 8);
  return buf;
}

/** A response whose result code is not success: the gateway's refusal. */
export interface NatPmpFailure {
  kind: 'failure';
  resultCode: number;
}

export interface NatPmpExternalAddress {
  kind: 'external-address';
  epoch: number;
  externalIp: string;
}

export interface NatPmpMapResponse {
  kind: 'map';
  epoch: number;
  internalPort: number;
  externalPort: number;
  lifetime: number;
}

function header(
  message: Uint8Array,
  opcode: number,
  length: number,
): Parsed<{ view: DataView; failure?: NatPmpFailure }> {
  if (message.length < 4) return rejected('too short');
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  if (view.getUint8(0) !== 0) return rejected(`version ${view.getUint8(0)}`);
  if (view.getUint8(1) !== opcode + 128) return rejected(`opcode ${view.getUint8(1)}`);
  const resultCode = view.getUint16(2);
  // Failures may come back truncated to the common header plus the epoch (RFC 6886 §3.5).
  if (resultCode !== 0) {
    if (message.length !== 8 && message.length !== length) return rejected(`length ${message.length}`);
    return parsed({ view, failure: { kind: 'failure', resultCode } });
  }
  if (message.length !== length) return rejected(`length ${message.length}`);
  return parsed({ view });
}

export function parseExternalAddressResponse(
  message: Uint8Array,
): Parsed<NatPmpExternalAddress | NatPmpFailure> {
  const head = header(message, OP_EXTERNAL_ADDRESS, 12);
  if (!head.ok) return head;
  if (head.value.failure) return parsed(head.value.failure);
  const { view } = head.value;
  return parsed({
    kind: 'external-address',
    epoch: view.getUint32(4),
    externalIp: formatIpv4(message.subarray(8, 12)),
  });
}

export function parseMapResponse(message: Uint8Array): Parsed<NatPmpMapResponse | NatPmpFailure> {
  const head = header(message, OP_MAP_UDP, 16);
  if (!head.ok) return head;
  if (head.value.failure) return parsed(head.value.failure);
  const { view } = head.value;
  return parsed({
    kind: 'map',
    epoch: view.getUint32(4),
    internalPort: view.getUint16(8),
    externalPort: view.getUint16(10),
    lifetime: view.getUint32(12),
  });
}
