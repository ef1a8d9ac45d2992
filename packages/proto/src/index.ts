export * from './admin';
export * from './api';
export * from './backoff';
export * from './common';
export * from './control';
export * from './ipc';
export * from './punch';
export * from './relay';
