// Domain modules in registration order (a module may use the services of those before it).
import type { App } from './app.js';
import { register as cluster } from './cluster/index.js';
import { register as host } from './host/index.js';
import { register as storage } from './storage/index.js';
import { register as image } from './image/index.js';
import { register as offering } from './offering/index.js';
import { register as network } from './network/index.js';
import { register as vm } from './vm/index.js';
import { register as virtualRouter } from './virtual-router/index.js';
import { register as consoles } from './console/index.js';

export const domains: Array<(app: App) => void> = [cluster, host, storage, image, offering, network, vm, virtualRouter, consoles];
