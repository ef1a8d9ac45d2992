export const DEFAULT_ZONE = 'trellis.internal';
/** Removed devices' addresses are not reused for this long. */
export const DEFAULT_ADDRESS_GRACE_SECONDS = 7 * 86400;
export const DEFAULT_LISTEN = '0.0.0.0:8443';
export const DEFAULT_DATA_DIR = './trellis-data';
