export * from './control-auth';
export * from './keys';
