// Identity: accounts, users, groups, policies, sessions and quotas. The identity service authenticates every call
// (the router asks it through the App); quotas guard the creating APIs through core/permissions.
import { defineDomain, type DomainContext } from '../core/domain.js';
import { accountDescriptor, identityDescriptors, identityHandlers } from './handlers.js';
import { checkQuota, quotaDemand } from './quotas.js';
import { IdentityService } from './service.js';

declare module '../services.js' {
  interface Services {
    identity: IdentityService;
  }
}

export { IdentityService };
export { ADMIN_UUID } from './service.js';

export const identityModule = defineDomain({ name: 'identity', provides: ['identity'], register });

function register(app: DomainContext): void {
  const identity = new IdentityService(app.db, app.globalConfig);
  app.provide('identity', identity);
  app.permissions.guardQuotas({
    operations: new Set(['CreateVmInstance', 'CreateDataVolume', 'CreateL3Network', 'AddImage', 'ChangeInstanceOffering']),
    check: async (id, msg, account) => checkQuota(app.db, account, await quotaDemand(app.db, id, msg)),
    withAccountLock: (account, fn) => app.locks.withLock(`account-quota-${account}`, fn),
  });
  app.addInventory(accountDescriptor);
  for (const d of identityDescriptors) app.addInventory(d);
  app.addHandlers(identityHandlers(app));
  // The admin account exists before any other module's boot work.
  app.onBoot(() => identity.bootstrap());
  app.onJoin(async () =>
    app.every(
      'session-cleanup',
      () => app.globalConfig.getMs('identity', 'session.cleanup.interval'),
      () => identity.purgeExpired(),
    ),
  );
}
