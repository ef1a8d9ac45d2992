export * from './constants';
export * from './handshake';
export * from './messages';
export {
  aeadOpen,
  aeadSeal,
  dh,
  generateKeyPair,
  hash,
  hmacBlake2s,
  kdf1,
  kdf2,
  kdf3,
  keyPairFromPrivate,
  mac,
  type StaticKeyPair,
} from './primitives';
export * from './tai64n';
export * from './transport';
