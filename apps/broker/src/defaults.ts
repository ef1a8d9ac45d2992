export const DEFAULT_ZONE = 'trellis.internal';
/** Removed devices' addresses are not reused for this long. */
export const DEFAULT_ADDRESS_GRACE_SECONDS = 7 * 86400;
export const DEFAULT_LISTEN = '0.0.0.0:8443';
export const DEFAULT_DATA_DIR = './trellis-data';
/** The endpoint reflector's UDP port (not 3478: that is STUN's, and the reflector speaks WireGuard). */
export const DEFAULT_REFLECTOR_PORT = 41641;
