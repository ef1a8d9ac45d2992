/** Protocol names and wire sizes from the WireGuard whitepaper (section 5.4). */

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const KEY_LENGTH = 32;
export const TAG_LENGTH = 16;
export const MAC_LENGTH = 16;
export const TIMESTAMP_LENGTH = 12;

export const INITIATION_LENGTH = 148;
export const RESPONSE_LENGTH = 92;
/** Transport header: type + reserved (4), receiver index (4), counter (8). */
export const TRANSPORT_HEADER_LENGTH = 16;
/** A keepalive is a transport message with an empty, authenticated payload. */
export const KEEPALIVE_LENGTH = TRANSPORT_HEADER_LENGTH + TAG_LENGTH;

/** WireGuard refuses a keypair after this many messages (whitepaper 6.1, REJECT_AFTER_MESSAGES). */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
/** Seconds after which a session's keys must no longer be used (REJECT_AFTER_TIME). */
export const REJECT_AFTER_TIME_SECONDS = 180;
