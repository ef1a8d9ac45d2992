export * from './allocation/allocation-core';
export * from './allocation/drop-reason';
export * from './packet/wireguard-packet';
export * from './relay';
export * from './relay-service';
