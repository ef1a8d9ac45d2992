export * from './certificate-store';
export * from './pinned-connect';
export * from './self-signed';
