export * from './counters';
export * from './endpoint-format';
export * from './endpoint-reflector';
export * from './nat-mapping';
export * from './reflector-core';
export * from './reflector-key';
export * from './token-bucket';
