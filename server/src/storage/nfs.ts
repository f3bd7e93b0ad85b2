// NFS primary storage: an export (`host:/path`) every Connected KVM host of the attached clusters mounts at
// /opt/zstack/nfsprimarystorage/prim-<uuid> (upstream's place). Volumes are files under that mount created by the
// hosts' agents (the default volume path and agent calls). Capacity is the export's, as the mounting hosts report
// it; what volumes hold stays held.
import { and, eq, inArray } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { argErr, toApiError } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { hosts, primaryStorage, primaryStorageClusterRefs } from '../db/schema/index.js';
import type { HostRow } from '../host/index.js';
import { agentFailure } from './agent-storage.js';
import { primaryStorageInventories, type PrimaryStorageRow, type PrimaryStorageService } from './primary.js';

export const NFS_TYPE = 'NFS';
const NFS_MOUNT_ROOT = '/opt/zstack/nfsprimarystorage';

/** `host:/absolute/path`, as 1.1's url. */
const NFS_URL = /^[^\s:/]+:\/\S*$/;

export function registerNfsPrimaryStorage(app: DomainContext, service: PrimaryStorageService): void {
  const { db } = app;
  const mountCmd = (ps: PrimaryStorageRow) => ({ primaryStorageUuid: ps.uuid, url: ps.url, mountPath: ps.mountPath! });
  const clusterHosts = async (clusterUuid: string) =>
    db
      .select()
      .from(hosts)
      .where(and(eq(hosts.clusterUuid, clusterUuid), eq(hosts.status, 'Connected')));

  /** Mounts it on `host`, recording the export's size as the host reports it. */
  const mountOn = async (ps: PrimaryStorageRow, host: HostRow) => {
    const r = await app.use('hosts').callOn(host, '/nfsprimarystorage/mount', mountCmd(ps));
    await service.recordCapacity(ps.uuid, r, { lastOpDate: new Date() });
  };

  service.registerType({
    name: NFS_TYPE,
    // Every Connected host of the cluster mounts it; one that cannot fails the attachment (upstream does the same).
    async afterAttach(ps, clusterUuid) {
      for (const h of await clusterHosts(clusterUuid)) {
        try {
          await mountOn(ps, h);
        } catch (e) {
          throw agentFailure(`host[uuid:${h.uuid}] cannot mount NFS primary storage[uuid:${ps.uuid}, url:${ps.url}]`, e);
        }
      }
    },
    async afterDetach(ps, clusterUuid) {
      for (const h of await clusterHosts(clusterUuid)) {
        await app
          .use('hosts')
          .callOn(h, '/nfsprimarystorage/unmount', mountCmd(ps))
          .catch((e) => console.error(`[nfs] unmounting ${ps.uuid} on host ${h.uuid}:`, toApiError(e).message));
      }
    },
    // Mounted again on every Connected host of its clusters; the first that cannot fails the reconnect.
    async reconnect(ps) {
      const clusters = await db
        .select({ c: primaryStorageClusterRefs.clusterUuid })
        .from(primaryStorageClusterRefs)
        .where(eq(primaryStorageClusterRefs.primaryStorageUuid, ps.uuid));
      for (const { c } of clusters) await this.afterAttach!(ps, c);
    },
    async afterHostConnect(ps, host) {
      await mountOn(ps, host).catch((e) => console.error(`[nfs] mounting ${ps.uuid} on host ${host.uuid}:`, toApiError(e).message));
    },
  });

  app.addHandlers(
    defineHandlers({
      AddNfsPrimaryStorage: {
        async check(msg) {
          await service.requireZone(msg.zoneUuid);
          if (!NFS_URL.test(msg.url)) throw argErr(`field[url]: ${msg.url} is not an NFS export; the url must be host:/absolute/path`);
          const [same] = await db
            .select({ uuid: primaryStorage.uuid })
            .from(primaryStorage)
            .where(and(eq(primaryStorage.type, NFS_TYPE), eq(primaryStorage.url, msg.url), inArray(primaryStorage.zoneUuid, [msg.zoneUuid])));
          if (same) throw argErr(`field[url]: NFS primary storage[uuid:${same.uuid}] already uses ${msg.url} in this zone`);
        },
        async run(msg) {
          const uuid = msg.resourceUuid ?? newUuid();
          const [ps] = await db
            .insert(primaryStorage)
            .values({
              uuid,
              zoneUuid: msg.zoneUuid,
              name: msg.name,
              description: msg.description ?? null,
              url: msg.url,
              mountPath: `${NFS_MOUNT_ROOT}/prim-${uuid}`,
              type: NFS_TYPE,
              status: 'Connected',
            })
            .returning();
          return { inventory: (await primaryStorageInventories([ps], db))[0] };
        },
      },
    }),
  );
}
