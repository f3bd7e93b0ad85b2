export * from './core.js';
export * from './identity.js';
export * from './zone.js';
export * from './compute.js';
export * from './storage.js';
export * from './network.js';
export * from './vm.js';
export * from './console.js';
