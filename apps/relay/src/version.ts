/** Sent in relay-hello. */
export const RELAY_VERSION = '0.1.0';
