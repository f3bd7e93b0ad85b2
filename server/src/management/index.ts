// The management node: GetVersion, global configuration, the node's cluster membership (membership.ts) and the
// garbage collector's jobs (QueryGCJob, TriggerGCJob, DeleteGCJob and its timers; the mechanism is core/gc.ts).
import { defineDomain, type DomainContext } from '../core/domain.js';
import { defineHandlers } from '../core/handlers.js';
import { gcJobDescriptor } from '../core/gc.js';
import { globalConfigDescriptor, managementHandlers, managementNodeDescriptor } from './handlers.js';
import { registerMembership } from './membership.js';

export const managementModule = defineDomain({ name: 'management', register });

function register(app: DomainContext): void {
  app.addInventory(globalConfigDescriptor);
  app.addInventory(managementNodeDescriptor);
  app.addHandlers(managementHandlers(app));
  registerMembership(app);

  app.addInventory(gcJobDescriptor);
  app.addHandlers(
    defineHandlers({
      TriggerGCJob: { run: async (msg) => (await app.gc.trigger(msg.uuid), {}) },
      DeleteGCJob: { run: async (msg) => (await app.gc.delete(msg.uuid), {}) },
    }),
  );
  const { globalConfig } = app;
  app.onJoin(async () => {
    app.every(
      'gc-scan',
      () => globalConfig.getMs('gc', 'scanInterval'),
      async () => app.gc.runDueJobs(await app.jobs.liveNodes(3 * globalConfig.getMs('managementServer', 'node.heartbeatInterval'))),
    );
    app.every(
      'gc-purge',
      () => globalConfig.getMs('gc', 'cleanUpCompletedJobInterval'),
      () => app.gc.purge(),
    );
  });
}
