// iSCSI file-system-backend primary storage: one server (`hostname`) keeps volumes as files under `url` and exports
// each as an iSCSI target; a volume's path is `iscsi://<host>:3260/<target>/1;file://<file>` (1.1's IscsiVolumePath)
// and the KVM hosts log in to the target. Volumes are made by the server's iSCSI agent, not the hosts. The SSH and
// CHAP passwords are sealed by the node's vault and never returned. No real iSCSI agent is deployed yet: the
// simulator agent serves simulated servers over the same protocol (paths under `/iscsi/`).
import { eq, inArray } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { credentialVault } from '../core/credentials.js';
import { argErr, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import type { InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import { iscsiPrimaryStorage, primaryStorage } from '../db/schema/index.js';
import { addAgentPrimaryStorage, simulatedStorageAgent, typeRecord } from './agent-storage.js';
import { primaryStorageDescriptor, type PrimaryStorageRow, type PrimaryStorageService } from './primary.js';
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

  const iscsiCall = simulatedStorageAgent(app, 'iSCSI');
  const ext = typeRecord(db, iscsiPrimaryStorage, 'primary', 'iSCSI');
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
      await service.recordCapacity(ps.uuid, r);
    },
    async reconnect(ps) {
      const e = await ext(ps.uuid);
      await service.recordCapacity(
        ps.uuid,
        await iscsiCall(ps.uuid, '/iscsi/init', { rootFolderPath: ps.url, hostname: e.hostname, filesystemType: e.filesystemType }),
      );
    },
    async deleteVolume(ps, _hostUuid, cmd) {
      await service.recordCapacity(
        ps.uuid,
        await iscsiCall(ps.uuid, '/iscsi/bits/delete', { installPath: fileOf(cmd.installPath), iscsiPath: cmd.installPath.split(';')[0] }),
      );
    },
  });

  const inventory = async (uuid: string) => (await service.inventory(uuid)) as never;

  app.addHandlers(
    defineHandlers({
      AddIscsiFileSystemBackendPrimaryStorage: {
        async check(msg) {
          await service.requireZone(msg.zoneUuid);
          if ((msg.chapUsername === undefined) !== (msg.chapPassword === undefined))
            throw argErr('chapUsername and chapPassword must be all null or all not null');
          if ((msg.filesystemType ?? 'btrfs') !== 'btrfs') throw argErr(`field[filesystemType]: in this version, the filesystemType must be btrfs`);
          const [same] = await db.select({ uuid: iscsiPrimaryStorage.uuid }).from(iscsiPrimaryStorage).where(eq(iscsiPrimaryStorage.hostname, msg.hostname));
          if (same) throw argErr(`field[hostname]: there is already an IscsiFileSystemBackendPrimaryStorage with hostname[${msg.hostname}]`);
        },
        // Write the rows → init on the server (root folder, capacity). A failure removes everything written.
        async run(msg) {
          const uuid = msg.resourceUuid ?? newUuid();
          const filesystemType = msg.filesystemType ?? 'btrfs';
          await addAgentPrimaryStorage(service, {
            flow: 'add-iscsi-primary-storage',
            row: { uuid, zoneUuid: msg.zoneUuid, name: msg.name, description: msg.description ?? null, url: msg.url, type: ISCSI_TYPE },
            writeTypeRows: async (tx) =>
              void (await tx.insert(iscsiPrimaryStorage).values({
                uuid,
                hostname: msg.hostname,
                sshUsername: msg.sshUsername,
                credential: vault().seal({ password: msg.sshPassword }),
                chapUsername: msg.chapUsername ?? null,
                chapCredential: msg.chapPassword ? vault().seal({ password: msg.chapPassword }) : null,
                filesystemType,
              })),
            init: () => iscsiCall(uuid, '/iscsi/init', { rootFolderPath: msg.url, hostname: msg.hostname, filesystemType }),
            initFailure: `cannot initialize iSCSI server ${msg.hostname}`,
          });
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
