export * from './control-auth';
export * from './enroll-proof';
export * from './key-rotation';
export * from './keys';
export * from './xeddsa';
