export * from './control-auth';
export * from './enroll-proof';
export * from './keys';
