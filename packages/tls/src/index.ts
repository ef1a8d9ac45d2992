export * from './broker-connect';
export * from './certificate-store';
export * from './connect-agent';
export * from './connect-timeout';
export * from './connection-limits';
export * from './pinned-connect';
export * from './self-signed';
