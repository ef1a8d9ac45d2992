import {
  CONSTRUCTION,
  IDENTIFIER,
  INITIATION_LENGTH,
  KEY_LENGTH,
  LABEL_MAC1,
  MAC_LENGTH,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  RESPONSE_LENGTH,
} from './constants';
import {
  INITIATION_OFFSETS,
  parseInitiation,
  parseResponse,
  RESPONSE_OFFSETS,
  writeHeader,
  writeUint32,
} from './messages';
import {
  aeadOpen,
  aeadSeal,
  dh,
  EMPTY,
  equalBytes,
  generateKeyPair,
  hash,
  kdf1,
  kdf2,
  kdf3,
  mac,
  type StaticKeyPair,
  utf8,
} from './primitives';
import { tai64n } from './tai64n';

// Noise_IKpsk2 as WireGuard runs it (whitepaper 5.4.2-5.4.5): the initiation (msg 1), the response
// (msg 2) and the derivation of the transport keys. Cookies (mac2) are never produced: the reflector
// does not send cookie replies, so mac2 stays zero, as WireGuard sends it without a cookie.

const INITIAL_CHAINING_KEY = hash(utf8(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAINING_KEY, utf8(IDENTIFIER));
const ZERO_PSK = new Uint8Array(KEY_LENGTH);

/** The mac1 key of whoever receives a message: HASH(LABEL_MAC1 ‖ receiver's static public key). */
export function mac1Key(receiverPublicKey: Uint8Array): Uint8Array {
  return hash(utf8(LABEL_MAC1), receiverPublicKey);
}

/**
 * mac1 check alone, without any X25519 work: lets a responder refuse junk cheaply before spending a
 * rate-limited handshake budget on it. consumeInitiation performs the same check itself.
 */
export function initiationMac1Valid(receiverPublicKey: Uint8Array, packet: Uint8Array): boolean {
  if (!parseInitiation(packet)) return false;
  const expected = mac(mac1Key(receiverPublicKey), packet.subarray(0, INITIATION_OFFSETS.mac1));
  return equalBytes(expected, packet.subarray(INITIATION_OFFSETS.mac1, INITIATION_OFFSETS.mac2));
}

/**
 * mac1 check of either handshake message (initiation or response), with a precomputed mac1Key:
 * what a relay uses to learn which side sent a handshake without holding any private key.
 * False for anything that is not a well-formed initiation or response.
 */
export function handshakeMac1ValidWithKey(receiverMac1Key: Uint8Array, packet: Uint8Array): boolean {
  let at: number;
  if (packet.length === INITIATION_LENGTH && packet[0] === MESSAGE_INITIATION) at = INITIATION_OFFSETS.mac1;
  else if (packet.length === RESPONSE_LENGTH && packet[0] === MESSAGE_RESPONSE) at = RESPONSE_OFFSETS.mac1;
  else return false;
  if (packet[1] !== 0 || packet[2] !== 0 || packet[3] !== 0) return false;
  return equalBytes(mac(receiverMac1Key, packet.subarray(0, at)), packet.subarray(at, at + MAC_LENGTH));
}

/** handshakeMac1ValidWithKey keyed by the receiver's static public key. */
export function handshakeMac1Valid(receiverPublicKey: Uint8Array, packet: Uint8Array): boolean {
  return handshakeMac1ValidWithKey(mac1Key(receiverPublicKey), packet);
}

/** The transport keys of one completed handshake, from one side's point of view. */
export interface SessionKeys {
  /** Index the peer puts in messages it sends us (our sender index). */
  localIndex: number;
  /** Index we put in messages we send (the peer's sender index). */
  remoteIndex: number;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  isInitiator: boolean;
}

/** What the responder keeps between consuming an initiation and sending the response. */
export interface ResponderHandshake {
  readonly chainingKey: Uint8Array;
  readonly hash: Uint8Array;
  readonly localStatic: StaticKeyPair;
  readonly initiatorStatic: Uint8Array;
  readonly initiatorEphemeral: Uint8Array;
  readonly initiatorIndex: number;
}

/** What the initiator keeps between sending the initiation and consuming the response. */
export interface InitiatorHandshake {
  readonly chainingKey: Uint8Array;
  readonly hash: Uint8Array;
  readonly localStatic: StaticKeyPair;
  readonly localEphemeral: StaticKeyPair;
  readonly responderStatic: Uint8Array;
  readonly localIndex: number;
}

export type HandshakeFailure = 'malformed' | 'bad-mac1' | 'decrypt-failed';

export type ConsumeInitiationResult =
  | {
      ok: true;
      initiatorStatic: Uint8Array;
      /** The decrypted TAI64N stamp; compare with compareTai64n to refuse replays. */
      timestamp: Uint8Array;
      senderIndex: number;
      state: ResponderHandshake;
    }
  | { ok: false; reason: HandshakeFailure };

export interface CreateInitiationOptions {
  senderIndex: number;
  /** TAI64N stamp; defaults to now. */
  timestamp?: Uint8Array;
  /** Ephemeral key pair; defaults to a fresh one (tests pass their own). */
  ephemeral?: StaticKeyPair;
}

/** Initiator side of message 1. */
export function createInitiation(
  local: StaticKeyPair,
  responderStatic: Uint8Array,
  options: CreateInitiationOptions,
): { packet: Uint8Array; state: InitiatorHandshake } {
  const ephemeral = options.ephemeral ?? generateKeyPair();
  const packet = new Uint8Array(INITIATION_LENGTH);
  const o = INITIATION_OFFSETS;
  writeHeader(packet, MESSAGE_INITIATION);
  writeUint32(packet, o.senderIndex, options.senderIndex);

  let h = hash(INITIAL_HASH, responderStatic);
  let c = kdf1(INITIAL_CHAINING_KEY, ephemeral.publicKey);
  packet.set(ephemeral.publicKey, o.ephemeral);
  h = hash(h, ephemeral.publicKey);

  const es = requireDh(ephemeral.privateKey, responderStatic);
  let k: Uint8Array;
  [c, k] = kdf2(c, es);
  const encryptedStatic = aeadSeal(k, 0n, local.publicKey, h);
  packet.set(encryptedStatic, o.encryptedStatic);
  h = hash(h, encryptedStatic);

  const ss = requireDh(local.privateKey, responderStatic);
  [c, k] = kdf2(c, ss);
  const encryptedTimestamp = aeadSeal(k, 0n, options.timestamp ?? tai64n(Date.now()), h);
  packet.set(encryptedTimestamp, o.encryptedTimestamp);
  h = hash(h, encryptedTimestamp);

  packet.set(mac(mac1Key(responderStatic), packet.subarray(0, o.mac1)), o.mac1);
  return {
    packet,
    state: {
      chainingKey: c,
      hash: h,
      localStatic: local,
      localEphemeral: ephemeral,
      responderStatic,
      localIndex: options.senderIndex >>> 0,
    },
  };
}

/**
 * Responder side of message 1: checks mac1, then recovers the initiator's static key and timestamp.
 * Authenticity of the initiator is proven by the static-static DH that opens the timestamp box.
 */
export function consumeInitiation(local: StaticKeyPair, packet: Uint8Array): ConsumeInitiationResult {
  const msg = parseInitiation(packet);
  if (!msg) return { ok: false, reason: 'malformed' };
  const expectedMac1 = mac(mac1Key(local.publicKey), packet.subarray(0, INITIATION_OFFSETS.mac1));
  if (!equalBytes(expectedMac1, msg.mac1)) return { ok: false, reason: 'bad-mac1' };

  let h = hash(INITIAL_HASH, local.publicKey);
  let c = kdf1(INITIAL_CHAINING_KEY, msg.ephemeral);
  h = hash(h, msg.ephemeral);

  const es = dh(local.privateKey, msg.ephemeral);
  if (!es) return { ok: false, reason: 'malformed' };
  let k: Uint8Array;
  [c, k] = kdf2(c, es);
  const initiatorStatic = aeadOpen(k, 0n, msg.encryptedStatic, h);
  if (!initiatorStatic) return { ok: false, reason: 'decrypt-failed' };
  h = hash(h, msg.encryptedStatic);

  const ss = dh(local.privateKey, initiatorStatic);
  if (!ss) return { ok: false, reason: 'malformed' };
  [c, k] = kdf2(c, ss);
  const timestamp = aeadOpen(k, 0n, msg.encryptedTimestamp, h);
  if (!timestamp) return { ok: false, reason: 'decrypt-failed' };
  h = hash(h, msg.encryptedTimestamp);

  return {
    ok: true,
    initiatorStatic,
    timestamp,
    senderIndex: msg.senderIndex,
    state: {
      chainingKey: c,
      hash: h,
      localStatic: local,
      initiatorStatic,
      initiatorEphemeral: msg.ephemeral,
      initiatorIndex: msg.senderIndex,
    },
  };
}

export interface CreateResponseOptions {
  senderIndex: number;
  ephemeral?: StaticKeyPair;
  /** Pre-shared key; WireGuard's default (and the reflector's) is all zeros. */
  presharedKey?: Uint8Array;
}

/** Responder side of message 2; returns the packet and the responder's transport keys. */
export function createResponse(
  state: ResponderHandshake,
  options: CreateResponseOptions,
): { packet: Uint8Array; session: SessionKeys } {
  const ephemeral = options.ephemeral ?? generateKeyPair();
  const packet = new Uint8Array(RESPONSE_LENGTH);
  const o = RESPONSE_OFFSETS;
  writeHeader(packet, MESSAGE_RESPONSE);
  writeUint32(packet, o.senderIndex, options.senderIndex);
  writeUint32(packet, o.receiverIndex, state.initiatorIndex);

  let c = kdf1(state.chainingKey, ephemeral.publicKey);
  packet.set(ephemeral.publicKey, o.ephemeral);
  let h = hash(state.hash, ephemeral.publicKey);
  c = kdf1(c, requireDh(ephemeral.privateKey, state.initiatorEphemeral));
  c = kdf1(c, requireDh(ephemeral.privateKey, state.initiatorStatic));
  const [chainingKey, tau, k] = kdf3(c, options.presharedKey ?? ZERO_PSK);
  h = hash(h, tau);
  const encryptedNothing = aeadSeal(k, 0n, EMPTY, h);
  packet.set(encryptedNothing, o.encryptedNothing);

  packet.set(mac(mac1Key(state.initiatorStatic), packet.subarray(0, o.mac1)), o.mac1);
  // The first KDF output is always the initiator-to-responder key.
  const [initiatorToResponder, responderToInitiator] = kdf2(chainingKey, EMPTY);
  return {
    packet,
    session: {
      localIndex: options.senderIndex >>> 0,
      remoteIndex: state.initiatorIndex,
      sendKey: responderToInitiator,
      receiveKey: initiatorToResponder,
      isInitiator: false,
    },
  };
}

export type ConsumeResponseResult =
  | { ok: true; session: SessionKeys }
  | { ok: false; reason: HandshakeFailure };

/** Initiator side of message 2. */
export function consumeResponse(
  state: InitiatorHandshake,
  packet: Uint8Array,
  presharedKey: Uint8Array = ZERO_PSK,
): ConsumeResponseResult {
  const msg = parseResponse(packet);
  if (!msg || msg.receiverIndex !== state.localIndex) return { ok: false, reason: 'malformed' };
  const expectedMac1 = mac(mac1Key(state.localStatic.publicKey), packet.subarray(0, RESPONSE_OFFSETS.mac1));
  if (!equalBytes(expectedMac1, msg.mac1)) return { ok: false, reason: 'bad-mac1' };

  let c = kdf1(state.chainingKey, msg.ephemeral);
  let h = hash(state.hash, msg.ephemeral);
  const ee = dh(state.localEphemeral.privateKey, msg.ephemeral);
  const se = dh(state.localStatic.privateKey, msg.ephemeral);
  if (!ee || !se) return { ok: false, reason: 'malformed' };
  c = kdf1(c, ee);
  c = kdf1(c, se);
  const [chainingKey, tau, k] = kdf3(c, presharedKey);
  h = hash(h, tau);
  if (!aeadOpen(k, 0n, msg.encryptedNothing, h)) return { ok: false, reason: 'decrypt-failed' };

  const [initiatorToResponder, responderToInitiator] = kdf2(chainingKey, EMPTY);
  return {
    ok: true,
    session: {
      localIndex: state.localIndex,
      remoteIndex: msg.senderIndex,
      sendKey: initiatorToResponder,
      receiveKey: responderToInitiator,
      isInitiator: true,
    },
  };
}

/** DH for keys we already validated or generated; a low-order result here is a programming error. */
function requireDh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const shared = dh(privateKey, publicKey);
  if (!shared) throw new Error('low-order public key');
  return shared;
}
