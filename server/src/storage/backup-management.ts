// Backup storage management: state changes, updates (SFTP login details sealed, never echoed), scan (a ping that
// records status and capacity), reconnect (SFTP: redeploy the agent, then connect), capacity figures, and the SFTP
// query. Semantics of upstream BackupStorageBase / SftpBackupStorage (1.1).
import { eq, inArray, or, sql, type SQL } from 'drizzle-orm';
import { changeStateHandler, updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { credentialVault } from '../core/credentials.js';
import { argErr, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { backupStorage, backupStorageZoneRefs } from '../db/schema/index.js';
import { agentFailure } from './agent-storage.js';
import { backupStorageDescriptor, backupStorageInventories, type BackupStorageRow, type BackupStorageService } from './backup.js';

const describe = (bs: Pick<BackupStorageRow, 'uuid' | 'name'>) => `backup storage[uuid:${bs.uuid}, name:${bs.name}]`;

export const sftpBackupStorageDescriptor: InventoryDescriptor<BackupStorageRow> = {
  ...backupStorageDescriptor,
  name: 'SftpBackupStorageInventory',
  fields: fieldsFromTable(backupStorage, { exclude: ['credential', 'hostKey', 'agentUrl'] }),
  where: (t) => eq(t.type, 'SftpBackupStorage'),
};

export function registerBackupStorageManagement(app: DomainContext, service: BackupStorageService): void {
  const { db } = app;
  app.addInventory(sftpBackupStorageDescriptor);
  const inventory = async (row: BackupStorageRow) => (await backupStorageInventories([row], db))[0];
  const backup = { table: backupStorage, entity: 'BackupStorageVO', inventory };
  const update = async (uuid: string, set: Partial<typeof backupStorage.$inferInsert>) => {
    const [row] = await db
      .update(backupStorage)
      .set({ ...set, lastOpDate: new Date() })
      .where(eq(backupStorage.uuid, uuid))
      .returning();
    if (!row) throw notFound('BackupStorageVO', uuid);
    return row;
  };
  const requireSftp = async (uuid: string) => {
    const bs = await service.require(uuid);
    if (bs.type !== 'SftpBackupStorage') throw argErr(`${describe(bs)} is ${bs.type}, not SftpBackupStorage`);
    return bs;
  };

  app.addHandlers(
    defineHandlers({
      ChangeBackupStorageState: changeStateHandler(app, backup),
      UpdateBackupStorage: updateHandler(app, { ...backup, fields: ['name', 'description'], check: false }),
      UpdateSftpBackupStorage: {
        check: async (msg) => void (await requireSftp(msg.uuid)),
        async run(msg) {
          const bs = await requireSftp(msg.uuid);
          const set: Partial<typeof backupStorage.$inferInsert> = {};
          if (msg.name !== undefined) set.name = msg.name;
          if (msg.description !== undefined) set.description = msg.description;
          if (msg.username !== undefined) set.username = msg.username;
          if (msg.sshPort !== undefined) set.sshPort = msg.sshPort;
          if (msg.hostname !== undefined && msg.hostname !== bs.hostname) {
            // Another server: its host key is learnt again on first contact; its agent is found at the new address.
            Object.assign(set, { hostname: msg.hostname, hostKey: null, agentUrl: null });
          }
          if (msg.password !== undefined) {
            const vault = credentialVault(app);
            const old = vault.tryOpen(bs.credential, describe(bs)) ?? {};
            set.credential = vault.seal({ ...old, password: msg.password });
          }
          return { inventory: await inventory(await update(msg.uuid, set)) };
        },
      },
      ScanBackupStorage: {
        check: async (msg) => void (await service.require(msg.backupStorageUuid, 'backupStorageUuid')),
        async run(msg) {
          const bs = await service.require(msg.backupStorageUuid, 'backupStorageUuid');
          try {
            await service.call(bs, '/backupstorage/ping', {}, { timeoutMs: 30_000 });
          } catch (e) {
            await update(bs.uuid, { status: 'Disconnected' });
            throw agentFailure(`failed to scan ${describe(bs)}`, e);
          }
          await update(bs.uuid, { status: 'Connected' });
          return {};
        },
      },
      ReconnectSftpBackupStorage: {
        async check(msg) {
          const bs = await service.require(msg.uuid);
          if (bs.type !== 'SftpBackupStorage' && bs.type !== 'SimulatorBackupStorage') {
            throw argErr(`${describe(bs)} is ${bs.type}, not SftpBackupStorage`);
          }
        },
        async run(msg) {
          let bs = await update(msg.uuid, { status: 'Connecting' });
          if (bs.type === 'SftpBackupStorage') {
            try {
              bs = await service.deployAgent(bs);
            } catch (e) {
              await update(bs.uuid, { status: 'Disconnected' });
              throw e;
            }
          }
          // connect() records Disconnected and fails with SYS.1006 naming the agent's error.
          return { inventory: await inventory(await service.connect(bs.uuid)) };
        },
      },
      GetBackupStorageCapacity: {
        async check(msg) {
          if (!msg.all && ![msg.zoneUuids, msg.backupStorageUuids].some((l) => l && l.length > 0)) {
            throw argErr('give at least one non-empty list of zoneUuids or backupStorageUuids, or all=true');
          }
        },
        async run(msg) {
          const which: SQL[] = [];
          if (msg.backupStorageUuids?.length) which.push(inArray(backupStorage.uuid, msg.backupStorageUuids));
          if (msg.zoneUuids?.length) {
            which.push(
              inArray(
                backupStorage.uuid,
                db
                  .select({ uuid: backupStorageZoneRefs.backupStorageUuid })
                  .from(backupStorageZoneRefs)
                  .where(inArray(backupStorageZoneRefs.zoneUuid, msg.zoneUuids)),
              ),
            );
          }
          const [sum] = await db
            .select({
              totalCapacity: sql<string>`COALESCE(SUM(${backupStorage.totalCapacity}), 0)`,
              availableCapacity: sql<string>`COALESCE(SUM(${backupStorage.availableCapacity}), 0)`,
            })
            .from(backupStorage)
            .where(msg.all ? undefined : or(...which));
          return { totalCapacity: Number(sum.totalCapacity), availableCapacity: Number(sum.availableCapacity) };
        },
      },
    }),
  );
}
