export * from './candidates';
export * from './clock-offset';
export * from './path-manager';
export * from './path-types';
export * from './peer-path-machine';
export * from './relay-leg';
export * from './wireguard-effects';
