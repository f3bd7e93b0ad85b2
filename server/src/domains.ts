// The domain modules of a management node. The order here does not matter for correctness: the composition root
// (app.ts) orders them by what they need and provide (core/domain.ts) and refuses to start on a missing or circular
// need. It is kept in dependency order anyway, for a reader.
import type { DomainModule } from './core/domain.js';
import { identityModule } from './identity/index.js';
import { managementModule } from './management/index.js';
import { zoneModule } from './zone/index.js';
import { clusterModule } from './cluster/index.js';
import { hostModule } from './host/index.js';
import { storageModule } from './storage/index.js';
import { localStorageModule } from './local-storage/index.js';
import { imageModule } from './image/index.js';
import { offeringModule } from './offering/index.js';
import { networkModule } from './network/index.js';
import { vmModule } from './vm/index.js';
import { virtualRouterModule } from './virtual-router/index.js';
import { consoleModule } from './console/index.js';
import { tagModule } from './tag/index.js';
import { securityGroupModule } from './security-group/index.js';
import { vipModule } from './vip/index.js';
import { snapshotModule } from './snapshot/index.js';
import { eipModule } from './eip/index.js';
import { portForwardingModule } from './port-forwarding/index.js';
import { loadBalancerModule } from './load-balancer/index.js';

export const domains: DomainModule[] = [
  identityModule,
  managementModule,
  zoneModule,
  clusterModule,
  hostModule,
  storageModule,
  imageModule,
  offeringModule,
  networkModule,
  vmModule,
  localStorageModule,
  virtualRouterModule,
  consoleModule,
  tagModule,
  securityGroupModule,
  vipModule,
  snapshotModule,
  eipModule,
  portForwardingModule,
  loadBalancerModule,
];
