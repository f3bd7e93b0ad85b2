// Security groups: inventories, APIs, settings, and the hooks that keep hosts' rule sets current (VM state changes,
// host reconnects, the retry of hosts that missed an application).
import { defineDomain, type DomainContext } from '../core/domain.js';
import { securityGroupHandlers } from './handlers.js';
import { securityGroupDescriptors } from './inventory.js';
import { SecurityGroupService } from './service.js';

declare module '../services.js' {
  interface Services {
    securityGroups: SecurityGroupService;
  }
}

export type { SecurityGroupService };

export const securityGroupModule = defineDomain({ name: 'security-group', needs: ['hosts'], provides: ['securityGroups'], register });

/** Registers the security group domain: inventories, APIs, settings, and the hooks keeping hosts' rule sets current. */
function register(app: DomainContext<'hosts', 'securityGroups'>): void {
  const gc = app.globalConfig;
  gc.define({
    category: 'securityGroup',
    name: 'ingress.defaultPolicy',
    type: 'string',
    defaultValue: 'deny',
    validValues: ['accept', 'deny'],
    description: 'What a NIC in a security group does with ingress traffic no rule allows',
  });
  gc.define({
    category: 'securityGroup',
    name: 'egress.defaultPolicy',
    type: 'string',
    defaultValue: 'accept',
    validValues: ['accept', 'deny'],
    description: 'What a NIC in a security group does with egress traffic no rule allows',
  });
  gc.define({
    category: 'securityGroup',
    name: 'host.failureWorkerInterval',
    type: 'seconds',
    defaultValue: '60',
    min: 1,
    max: 86400,
    description: 'Seconds between retries of hosts whose security group rules failed to apply',
  });
  gc.define({
    category: 'securityGroup',
    name: 'host.failureResolvePerTime',
    type: 'int',
    defaultValue: '100',
    min: 1,
    max: 10000,
    description: 'Hosts retried per round of the security group failure worker',
  });

  const service = new SecurityGroupService(app);
  app.provide('securityGroups', service);
  for (const d of securityGroupDescriptors) app.addInventory(d);
  app.addHandlers(securityGroupHandlers(app, service));

  // A VM that started, stopped or moved: its member NICs' rules follow it (a stopped VM's host needs none).
  app.events.on('vm.state', async ({ vmUuid, newState }) => {
    if (newState === 'Running' || newState === 'Stopped') await service.onVmState(vmUuid);
  });
  app
    .use('hosts')
    .afterConnect((host) =>
      service
        .onHostConnected(host.uuid)
        .catch((e) => console.warn(`[security-group] refresh of host[uuid:${host.uuid}] failed: ${e instanceof Error ? e.message : e}`)),
    );
  app.every(
    'security-group-failure-hosts',
    () => gc.getMs('securityGroup', 'host.failureWorkerInterval'),
    () => service.retryFailedHosts(),
  );
}
