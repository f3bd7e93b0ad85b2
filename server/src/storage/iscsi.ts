// iSCSI file-system-backend primary storage: one server (`hostname`) keeps volumes as files under `url` and exports
// each as an iSCSI target; a volume's path is `iscsi://<host>:3260/<target>/1;file://<file>` (1.1's IscsiVolumePath)
// and the KVM hosts log in to the target. Volumes are made by the server's iSCSI agent, not the hosts. The SSH and
// CHAP passwords are sealed by the node's vault and never returned. No real iSCSI agent is deployed yet: the
// simulator agent serves simulated servers over the same protocol (paths under `/iscsi/`).
import { eq, inArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { AgentPath, AgentRequest, AgentResponse } from '../agent-client/index.js';
import { credentialVault } from '../core/credentials.js';
import { argErr, err, notFound, toApiError } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import type { InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import { iscsiPrimaryStorage, primaryStorage, zones } from '../db/schema/index.js';
import { primaryStorageDescriptor, primaryStorageInventories, type PrimaryStorageRow, type PrimaryStorageService } from './primary.js';
import { definePrimaryStorageInventoryFields } from './types.js';

export const ISCSI_TYPE = 'IscsiFileSystemBackendPrimaryStorage';

async function iscsiFields(rows: PrimaryStorageRow[], db: Tx) {
  const ext = rows.length
    ? await db
        .select()
        .from(iscsiPrimaryStorage)
        .where(
          inArray(
            iscsiPrimaryStorage.uuid,
            rows.map((r) => r.uuid),
          ),
        )
    : [];
  return new Map(
    ext.map((e) => [
      e.uuid,
      { hostname: e.hostname, sshUsername: e.sshUsername, ...(e.chapUsername ? { chapUsername: e.chapUsername } : {}), filesystemType: e.filesystemType },
    ]),
  );
}
definePrimaryStorageInventoryFields(ISCSI_TYPE, iscsiFields);

export const iscsiPrimaryStorageDescriptor: InventoryDescriptor<PrimaryStorageRow> = {
  ...primaryStorageDescriptor,
  name: 'IscsiFileSystemBackendPrimaryStorageInventory',
  where: (t) => eq(t.type, ISCSI_TYPE),
};

/** `iscsi://host:port/target/lun;file://path` → the file. */
const fileOf = (installPath: string) => installPath.split(';file://')[1] ?? installPath;

export function registerIscsiPrimaryStorage(app: DomainContext, service: PrimaryStorageService): void {
  const { db } = app;
  app.addInventory(iscsiPrimaryStorageDescriptor);
  const vault = () => credentialVault(app);

  const iscsiCall = async <P extends AgentPath>(psUuid: string, path: P, body: AgentRequest<P>): Promise<AgentResponse<P>> => {
    if (!app.options.simulatorUrl) throw err('SYS.1006', 'iSCSI storage is served by the simulator agent, and none is configured on this management node');
    return app.agents.call(app.options.simulatorUrl, path, body, { targetUuid: psUuid });
  };
  const ext = async (uuid: string) => {
    const [e] = await db.select().from(iscsiPrimaryStorage).where(eq(iscsiPrimaryStorage.uuid, uuid));
    if (!e) throw err('SYS.1006', `primary storage[uuid:${uuid}] has no iSCSI record`);
    return e;
  };
  const recordCapacity = async (uuid: string, r: { totalCapacity?: number; availableCapacity?: number }) => {
    if (r.totalCapacity === undefined) return;
    const total = r.totalCapacity;
    await db
      .update(primaryStorage)
      .set({
        totalCapacity: total,
        availableCapacity: sql`GREATEST(0, ${total}::bigint - (${primaryStorage.totalCapacity} - ${primaryStorage.availableCapacity}))`,
        totalPhysicalCapacity: total,
        availablePhysicalCapacity: r.availableCapacity ?? total,
      })
      .where(eq(primaryStorage.uuid, uuid));
  };
  const chapOf = (e: typeof iscsiPrimaryStorage.$inferSelect) =>
    e.chapUsername && e.chapCredential
      ? { chapUsername: e.chapUsername, chapPassword: vault().open(e.chapCredential, `primary storage[uuid:${e.uuid}]`).password }
      : {};

  service.registerType({
    name: ISCSI_TYPE,
    async volumeInstallPath(ps, kind, volumeUuid, accountUuid) {
      const e = await ext(ps.uuid);
      const file = `${ps.url.replace(/\/$/, '')}/${kind}/acct-${accountUuid}/vol-${volumeUuid}/${volumeUuid}.img`;
      return `iscsi://${e.hostname}:3260/iqn.2015-01.org.zstack:${volumeUuid}/1;file://${file}`;
    },
    async createVolume(ps, _host, cmd) {
      const e = await ext(ps.uuid);
      const base = { installPath: fileOf(cmd.installPath), volumeUuid: cmd.volumeUuid ?? '', size: cmd.size, ...chapOf(e) };
      const r = cmd.backupStorageInstallPath
        ? await iscsiCall(ps.uuid, '/iscsi/volumes/createrootfromtemplate', {
            ...base,
            templatePathInCache: `${ps.url.replace(/\/$/, '')}/imagecache/${cmd.backupStorageInstallPath.split('/').pop()}`,
            backupStorageUuid: cmd.backupStorageUuid,
            backupStorageInstallPath: cmd.backupStorageInstallPath,
          })
        : await iscsiCall(ps.uuid, '/iscsi/volumes/createempty', base);
      await recordCapacity(ps.uuid, r);
    },
    async reconnect(ps) {
      const e = await ext(ps.uuid);
      await recordCapacity(
        ps.uuid,
        await iscsiCall(ps.uuid, '/iscsi/init', { rootFolderPath: ps.url, hostname: e.hostname, filesystemType: e.filesystemType }),
      );
    },
    async deleteVolume(ps, _hostUuid, cmd) {
      await recordCapacity(
        ps.uuid,
        await iscsiCall(ps.uuid, '/iscsi/bits/delete', { installPath: fileOf(cmd.installPath), iscsiPath: cmd.installPath.split(';')[0] }),
      );
    },
  });

  const inventory = async (uuid: string) => (await primaryStorageInventories([await service.require(uuid)], db))[0] as never;

  app.addHandlers(
    defineHandlers({
      AddIscsiFileSystemBackendPrimaryStorage: {
        async check(msg) {
          const [z] = await db.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, msg.zoneUuid));
          if (!z) throw notFound('ZoneVO', msg.zoneUuid, 'zoneUuid');
          if ((msg.chapUsername === undefined) !== (msg.chapPassword === undefined))
            throw argErr('chapUsername and chapPassword must be all null or all not null');
          if ((msg.filesystemType ?? 'btrfs') !== 'btrfs') throw argErr(`field[filesystemType]: in this version, the filesystemType must be btrfs`);
          const [same] = await db.select({ uuid: iscsiPrimaryStorage.uuid }).from(iscsiPrimaryStorage).where(eq(iscsiPrimaryStorage.hostname, msg.hostname));
          if (same) throw argErr(`field[hostname]: there is already an IscsiFileSystemBackendPrimaryStorage with hostname[${msg.hostname}]`);
        },
        // Write the rows → init on the server (root folder, capacity). A failure removes everything written.
        async run(msg) {
          const uuid = msg.resourceUuid ?? newUuid();
          await runFlow(
            'add-iscsi-primary-storage',
            [
              {
                name: 'write primary storage',
                run: async () =>
                  db.transaction(async (tx) => {
                    await tx.insert(primaryStorage).values({
                      uuid,
                      zoneUuid: msg.zoneUuid,
                      name: msg.name,
                      description: msg.description ?? null,
                      url: msg.url,
                      type: ISCSI_TYPE,
                      status: 'Connecting',
                    });
                    await tx.insert(iscsiPrimaryStorage).values({
                      uuid,
                      hostname: msg.hostname,
                      sshUsername: msg.sshUsername,
                      credential: vault().seal({ password: msg.sshPassword }),
                      chapUsername: msg.chapUsername ?? null,
                      chapCredential: msg.chapPassword ? vault().seal({ password: msg.chapPassword }) : null,
                      filesystemType: msg.filesystemType ?? 'btrfs',
                    });
                  }),
                rollback: async () => void (await db.delete(primaryStorage).where(eq(primaryStorage.uuid, uuid))),
              },
              {
                name: 'init',
                async run() {
                  try {
                    const r = await iscsiCall(uuid, '/iscsi/init', {
                      rootFolderPath: msg.url,
                      hostname: msg.hostname,
                      filesystemType: msg.filesystemType ?? 'btrfs',
                    });
                    await recordCapacity(uuid, r);
                  } catch (e) {
                    const cause = toApiError(e).error;
                    throw err('SYS.1006', `cannot initialize iSCSI server ${msg.hostname}: ${cause.details ?? cause.description}`, cause);
                  }
                  await db.update(primaryStorage).set({ status: 'Connected' }).where(eq(primaryStorage.uuid, uuid));
                },
              },
            ],
            {},
          );
          return { inventory: await inventory(uuid) };
        },
      },
      UpdateIscsiFileSystemBackendPrimaryStorage: {
        async check(msg) {
          const ps = await service.get(msg.uuid);
          if (!ps) throw notFound('PrimaryStorageVO', msg.uuid);
          if (ps.type !== ISCSI_TYPE) throw argErr(`field[uuid]: primary storage[uuid:${msg.uuid}] is ${ps.type}, not ${ISCSI_TYPE}`);
          const e = await ext(msg.uuid);
          const chapUser = msg.chapUsername ?? e.chapUsername;
          const hasChapPassword = msg.chapPassword !== undefined || e.chapCredential !== null;
          if (!!chapUser !== hasChapPassword) throw argErr('chapUsername and chapPassword must be all null or all not null');
        },
        async run(msg) {
          await db.transaction(async (tx) => {
            const ps: Partial<PrimaryStorageRow> = { lastOpDate: new Date() };
            if (msg.name !== undefined) ps.name = msg.name;
            if (msg.description !== undefined) ps.description = msg.description;
            await tx.update(primaryStorage).set(ps).where(eq(primaryStorage.uuid, msg.uuid));
            const e: Partial<typeof iscsiPrimaryStorage.$inferInsert> = {};
            if (msg.sshUsername !== undefined) e.sshUsername = msg.sshUsername;
            if (msg.sshPassword !== undefined) e.credential = vault().seal({ password: msg.sshPassword });
            if (msg.chapUsername !== undefined) e.chapUsername = msg.chapUsername;
            if (msg.chapPassword !== undefined) e.chapCredential = vault().seal({ password: msg.chapPassword });
            if (Object.keys(e).length) await tx.update(iscsiPrimaryStorage).set(e).where(eq(iscsiPrimaryStorage.uuid, msg.uuid));
          });
          return { inventory: await inventory(msg.uuid) };
        },
      },
    }),
  );
}
