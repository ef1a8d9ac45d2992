export * from './certificate-store';
export * from './self-signed';
