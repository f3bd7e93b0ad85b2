import type { App } from '../app.js';

/** Registers the storage domain: inventories, handlers, cascade nodes, settings and its service. */
export function register(_app: App): void {}
