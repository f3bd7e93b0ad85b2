// Hosts: the host model shared by every host kind, its APIs, settings, ping tracker and cascade node, and the agent
// deploys (KVM hosts here, SFTP backup storage through `app.use('agentDeployer')`) with their logs.
import { eq, inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { hosts } from '../db/schema/index.js';
import { DEFAULT_INSTALL_PARENT } from '../../../agents/src/deploy/index.js';
import { AgentDeployService, hostDeployLogDescriptor } from './deploy.js';
import { hostHandlers } from './handlers.js';
import { kvmHostHandlers } from './kvm-ops.js';
import { hostDescriptor } from './inventory.js';
import { startPingTracker } from './ping-tracker.js';
import { HostService } from './service.js';
import { noOtherManagementNode } from '../core/alone.js';

declare module '../services.js' {
  interface Services {
    hosts: HostService;
    /** Deploys agents over SSH (KVM hosts, SFTP backup storage), bounded by kvm/deploy.parallelismDegree. */
    agentDeployer: AgentDeployService;
  }
}

// The host domain's public face: what other domains may use besides `ctx.use('hosts')`.
export { reservation, type HostRow, type HostService } from './service.js';

export const hostModule = defineDomain({ name: 'host', provides: ['hosts', 'agentDeployer'], register });

/** Registers the host domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  const gc = app.globalConfig;
  gc.define({
    category: 'host',
    name: 'cpu.overProvisioning.ratio',
    type: 'int',
    defaultValue: '10',
    min: 1,
    max: 1000,
    description: 'Schedulable vCPUs per physical CPU of a host',
  });
  gc.define({
    category: 'host',
    name: 'ping.interval',
    type: 'seconds',
    defaultValue: '60',
    min: 1,
    max: 86400,
    description: 'Seconds between pings of each host agent',
  });
  gc.define({
    category: 'host',
    name: 'ping.timeout',
    type: 'seconds',
    defaultValue: '5',
    min: 1,
    max: 300,
    description: 'Seconds a host agent has to answer a ping before the host is Disconnected',
  });
  gc.define({
    category: 'host',
    name: 'ping.parallelismDegree',
    type: 'int',
    defaultValue: '100',
    min: 1,
    max: 10000,
    description: 'Hosts pinged at the same time',
  });
  gc.define({
    category: 'host',
    name: 'connection.autoReconnectOnError',
    type: 'bool',
    defaultValue: 'true',
    description: 'Reconnect a Disconnected host as soon as its agent answers a ping again',
  });

  gc.define({
    category: 'kvm',
    name: 'agent.installRoot',
    type: 'string',
    defaultValue: `${DEFAULT_INSTALL_PARENT}/kvm`,
    description: 'Directory the kvm agent is deployed to on KVM hosts (bundle, config, pidfile, log); applies at the next deploy (AddKVMHost, ReconnectHost)',
  });
  gc.define({
    category: 'kvm',
    name: 'agent.port',
    type: 'int',
    defaultValue: '7070',
    min: 1,
    max: 65535,
    description: 'Port the kvm agent listens on; applies at the next deploy',
  });
  gc.define({
    category: 'kvm',
    name: 'agent.backend',
    type: 'string',
    defaultValue: 'simulator',
    validValues: ['simulator', 'libvirt'],
    description: 'Backend of deployed kvm agents: simulator (no hypervisor needed) or libvirt (real hypervisors: virsh/qemu-img); applies at the next deploy',
  });
  gc.define({
    category: 'kvm',
    name: 'deploy.parallelismDegree',
    type: 'int',
    defaultValue: '10',
    min: 1,
    max: 1000,
    description: 'Agent deploys over SSH (KVM hosts, SFTP backup storage) running at the same time on one management node; the others wait',
  });

  const deployer = new AgentDeployService(app);
  app.provide('agentDeployer', deployer);
  app.addInventory(hostDeployLogDescriptor);
  const service = new HostService(app, deployer);
  app.provide('hosts', service);
  app.addInventory(hostDescriptor);
  app.addHandlers(hostHandlers(app, service));
  app.addHandlers(kvmHostHandlers(app, service));
  app.cascade.register({
    kind: 'host',
    parents: {
      cluster: async (clusterUuids) =>
        (await app.db.select({ uuid: hosts.uuid }).from(hosts).where(inArray(hosts.clusterUuid, clusterUuids))).map((r) => r.uuid),
    },
    async delete(uuids) {
      const gone = await app.db.delete(hosts).where(inArray(hosts.uuid, uuids)).returning({ uuid: hosts.uuid });
      await deployer.deleteLogs(gone.map((h) => h.uuid));
      for (const h of gone) app.events.emit('host.deleted', { hostUuid: h.uuid });
    },
  });
  // A connect cut short by a crash leaves a host Connecting, which pings skip: when no other management node is
  // alive (none can be connecting it), it becomes Disconnected so the tracker reconnects it.
  app.onBoot(async () => {
    if (!(await noOtherManagementNode(app))) return;
    const stuck = await app.db.select({ uuid: hosts.uuid }).from(hosts).where(eq(hosts.status, 'Connecting'));
    for (const h of stuck) await service.setStatus(h.uuid, 'Disconnected', ['Connecting']);
  });
  app.events.on('globalConfig.updated', ({ category, name }) => {
    if (category === 'host' && name === 'cpu.overProvisioning.ratio') return service.applyCpuRatio();
  });
  startPingTracker(app, service);
}
