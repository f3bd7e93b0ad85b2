// Backup storage: where images live, attached to zones. Simulated backup storage is served by the simulator agent;
// SFTP backup storage by a backup-storage agent on its server, deployed over SSH by AddSftpBackupStorage (the
// deployer of the host module: same task log, same HOST.1003 errors, same parallelism bound) with a secret of its
// own. Every agent reply carries the capacities.
import { and, eq, inArray } from 'drizzle-orm';
import { deleteHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import type { AgentPathOf, AgentReply, AgentRequest, AgentResponse } from '../agent-client/index.js';
import { formatDate } from '../core/dates.js';
import { argErr, err, notFound, toApiError } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import { backupStorage, backupStorageZoneRefs, imageBackupStorageRefs, zones } from '../db/schema/index.js';
import { DEFAULT_INSTALL_PARENT } from '../../../agents/src/deploy/index.js';
import { credentialVault, newAgentSecret } from '../core/credentials.js';
import { agentFailure, writeStorageStep } from './agent-storage.js';
import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { withTypeFields, type BackupStorageCommand, type BackupStorageType } from './types.js';

export type BackupStorageRow = typeof backupStorage.$inferSelect;

/** Port of a real backup-storage agent (upstream's sftpbackupstorage). */
export const BACKUP_STORAGE_AGENT_PORT = 7171;

export interface BackupStorageReply extends AgentReply {
  totalCapacity?: number;
  availableCapacity?: number;
}

const describe = (bs: Pick<BackupStorageRow, 'uuid' | 'name'>) => `backup storage[uuid:${bs.uuid}, name:${bs.name}]`;

export class BackupStorageService {
  private readonly types = new Map<string, BackupStorageType>();

  constructor(private app: DomainContext) {
    this.registerType({ name: 'SimulatorBackupStorage', simulated: true });
    this.registerType({ name: 'SftpBackupStorage' });
  }

  /** A storage type (types.ts): what it does differently from the default. */
  registerType(type: BackupStorageType): void {
    this.types.set(type.name, type);
  }

  /** The registered type names (GetBackupStorageTypes). */
  typeNames(): string[] {
    return [...this.types.keys()];
  }

  typeOf(bs: Pick<BackupStorageRow, 'type'>): BackupStorageType {
    return this.types.get(bs.type) ?? { name: bs.type };
  }

  async get(uuid: string): Promise<BackupStorageRow | undefined> {
    const [bs] = await this.app.db.select().from(backupStorage).where(eq(backupStorage.uuid, uuid));
    return bs;
  }

  async require(uuid: string, field = 'uuid'): Promise<BackupStorageRow> {
    const bs = await this.get(uuid);
    if (!bs) throw notFound('BackupStorageVO', uuid, field);
    return bs;
  }

  isSimulated(bs: BackupStorageRow): boolean {
    return this.typeOf(bs).simulated === true;
  }

  agentUrlOf(bs: BackupStorageRow): string {
    if (this.isSimulated(bs)) {
      if (!this.app.options.simulatorUrl) throw err('SYS.1006', 'no simulator agent is configured on this management node');
      return this.app.options.simulatorUrl;
    }
    return bs.agentUrl ?? `http://${bs.hostname}:${BACKUP_STORAGE_AGENT_PORT}`;
  }

  /** The secret of an SFTP backup storage's own agent; undefined = the node's default (the simulator's). */
  agentSecretOf(bs: BackupStorageRow): string | undefined {
    if (bs.type !== 'SftpBackupStorage') return undefined;
    return credentialVault(this.app).tryOpen(bs.credential, describe(bs))?.agentSecret;
  }

  /**
   * Deploys the backup-storage agent on an SFTP backup storage's server (storage root = its url), recording the host
   * key seen on first contact and the agent's URL. Fails with the deployer's HOST.1003 (task, host, exit code,
   * stderr tail).
   */
  async deployAgent(bs: BackupStorageRow): Promise<BackupStorageRow> {
    const vault = credentialVault(this.app);
    if (!bs.credential || !bs.username || !bs.hostname) throw err('SYS.1006', `${describe(bs)} has no SSH credentials`);
    const credentials = vault.open(bs.credential, describe(bs));
    let agentSecret = credentials.agentSecret;
    if (!agentSecret) {
      // Rows sealed before agents had secrets of their own: one now, stored before the agent is told.
      agentSecret = newAgentSecret();
      const credential = vault.seal({ ...credentials, agentSecret });
      await this.app.db.update(backupStorage).set({ credential }).where(eq(backupStorage.uuid, bs.uuid));
    }
    const gc = this.app.globalConfig;
    const r = await this.app.use('agentDeployer').deploy({
      resourceUuid: bs.uuid,
      resourceType: 'BackupStorageVO',
      describe: describe(bs),
      kind: 'backup-storage',
      address: bs.hostname,
      sshPort: bs.sshPort ?? 22,
      username: bs.username,
      credentials,
      agentSecret,
      knownHostKey: bs.hostKey ?? undefined,
      installRoot: gc.get('sftpBackupStorage', 'agent.installRoot'),
      agentPort: gc.getNumber('sftpBackupStorage', 'agent.port'),
      storageRoot: this.storagePathOf(bs),
    });
    const [row] = await this.app.db
      .update(backupStorage)
      .set({ hostKey: bs.hostKey ?? r.hostKey, agentUrl: r.agentUrl })
      .where(eq(backupStorage.uuid, bs.uuid))
      .returning();
    return row ?? bs;
  }

  /** The directory images go to on the agent: the url when it is a path (a simulated one may be any label). */
  storagePathOf(bs: BackupStorageRow): string {
    const custom = this.typeOf(bs).storagePath;
    if (custom) return custom(bs);
    return bs.url.startsWith('/') ? bs.url.replace(/\/+$/, '') || '/' : `/zstack-bs/${bs.uuid}`;
  }

  /** An agent command for this backup storage; the capacities riding on the reply are recorded. */
  async call<P extends AgentPathOf<'backupstorage'>>(
    bs: BackupStorageRow,
    path: P,
    body: AgentRequest<P>,
    opts: { timeoutMs?: number } = {},
  ): Promise<AgentResponse<P>> {
    const t = this.typeOf(bs);
    if (t.call) {
      const reply = (await t.call(bs, path as BackupStorageCommand, body, opts)) as AgentResponse<P>;
      await this.recordCapacity(bs.uuid, reply as BackupStorageReply);
      return reply;
    }
    const reply = await this.app.agents.call(this.agentUrlOf(bs), path, body, {
      targetUuid: bs.uuid,
      timeoutMs: opts.timeoutMs,
      secret: this.agentSecretOf(bs),
    });
    await this.recordCapacity(bs.uuid, reply);
    return reply;
  }

  async recordCapacity(uuid: string, reply: BackupStorageReply): Promise<void> {
    if (reply.totalCapacity === undefined || reply.availableCapacity === undefined) return;
    await this.app.db
      .update(backupStorage)
      .set({ totalCapacity: reply.totalCapacity, availableCapacity: reply.availableCapacity })
      .where(eq(backupStorage.uuid, uuid));
  }

  /** `/backupstorage/connect`: Connected with the agent's capacities, or Disconnected and the error thrown. */
  async connect(uuid: string, opts: { timeoutMs?: number } = {}): Promise<BackupStorageRow> {
    const bs = await this.require(uuid);
    try {
      await this.call(bs, '/backupstorage/connect', { uuid, storagePath: this.storagePathOf(bs) }, opts);
    } catch (e) {
      await this.app.db.update(backupStorage).set({ status: 'Disconnected', lastOpDate: new Date() }).where(eq(backupStorage.uuid, uuid));
      throw agentFailure(`failed to connect ${describe(bs)}`, e);
    }
    const [row] = await this.app.db.update(backupStorage).set({ status: 'Connected', lastOpDate: new Date() }).where(eq(backupStorage.uuid, uuid)).returning();
    return row;
  }

  /** The inventory of the backup storage `uuid` (with its type's fields). */
  async inventory(uuid: string) {
    return (await backupStorageInventories([await this.require(uuid)], this.app.db))[0];
  }
}

export async function backupStorageInventories(rows: BackupStorageRow[], db: Tx) {
  return withTypeFields('backup', rows, baseInventories(rows, await zoneRefsOf(rows, db)), db);
}

async function zoneRefsOf(rows: BackupStorageRow[], db: Tx) {
  return rows.length
    ? await db
        .select()
        .from(backupStorageZoneRefs)
        .where(
          inArray(
            backupStorageZoneRefs.backupStorageUuid,
            rows.map((r) => r.uuid),
          ),
        )
        .orderBy(backupStorageZoneRefs.createDate)
    : [];
}

function baseInventories(rows: BackupStorageRow[], refs: Array<typeof backupStorageZoneRefs.$inferSelect>) {
  return rows.map((bs) => {
    const inv = {
      uuid: bs.uuid,
      name: bs.name,
      description: bs.description ?? undefined,
      url: bs.url,
      type: bs.type as 'SimulatorBackupStorage' | 'SftpBackupStorage' | 'Ceph',
      state: bs.state as 'Enabled' | 'Disabled',
      status: bs.status as 'Connecting' | 'Connected' | 'Disconnected',
      totalCapacity: bs.totalCapacity,
      availableCapacity: bs.availableCapacity,
      attachedZoneUuids: refs.filter((r) => r.backupStorageUuid === bs.uuid).map((r) => r.zoneUuid),
      createDate: formatDate(bs.createDate)!,
      lastOpDate: formatDate(bs.lastOpDate)!,
    };
    if (bs.type !== 'SftpBackupStorage') return inv;
    return { ...inv, hostname: bs.hostname ?? undefined, username: bs.username ?? undefined, sshPort: bs.sshPort ?? undefined };
  });
}

const backupStorageLinks = schemaLinks(backupStorage, backupStorageZoneRefs, imageBackupStorageRefs);

export const backupStorageDescriptor: InventoryDescriptor<BackupStorageRow> = {
  name: 'BackupStorageInventory',
  table: backupStorage,
  fields: fieldsFromTable(backupStorage, { exclude: ['credential', 'hostKey', 'agentUrl'] }),
  expand: backupStorageLinks.expand,
  aliases: backupStorageLinks.aliases,
  defaultSort: 'createDate',
  toInventories: backupStorageInventories,
};

export const backupStorageZoneRefDescriptor: InventoryDescriptor = {
  name: 'BackupStorageZoneRefInventory',
  table: backupStorageZoneRefs,
  fields: fieldsFromTable(backupStorageZoneRefs),
  expand: schemaExpands(backupStorageZoneRefs),
  toInventories: async (rows) => rows,
};

export function registerBackupStorage(app: DomainContext): BackupStorageService {
  const { db } = app;
  const service = new BackupStorageService(app);
  const gc = app.globalConfig;
  gc.define({
    category: 'sftpBackupStorage',
    name: 'agent.installRoot',
    type: 'string',
    defaultValue: `${DEFAULT_INSTALL_PARENT}/backup-storage`,
    description: 'Directory the backup-storage agent is deployed to on SFTP backup storage servers; applies at the next deploy',
  });
  gc.define({
    category: 'sftpBackupStorage',
    name: 'agent.port',
    type: 'int',
    defaultValue: String(BACKUP_STORAGE_AGENT_PORT),
    min: 1,
    max: 65535,
    description: 'Port the backup-storage agent listens on; applies at the next deploy',
  });
  app.addInventory(backupStorageDescriptor);
  app.addInventory(backupStorageZoneRefDescriptor);

  // Zone refs go with the zone (ON DELETE CASCADE); images kept only here go with the backup storage (image node).
  app.cascade.register({
    kind: 'backupStorage',
    parents: {},
    delete: async (uuids) => {
      for (const bs of await db.select().from(backupStorage).where(inArray(backupStorage.uuid, uuids))) {
        await service
          .typeOf(bs)
          .beforeDelete?.(bs)
          .catch((e) => console.error(`[backup-storage] cleaning up ${bs.type} backup storage ${bs.uuid}:`, toApiError(e).message));
      }
      await db.delete(backupStorage).where(inArray(backupStorage.uuid, uuids));
      await app.use('agentDeployer').deleteLogs(uuids);
    },
  });

  const attachment = async (zoneUuid: string, bsUuid: string) => {
    const [z] = await db.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, zoneUuid));
    if (!z) throw notFound('ZoneVO', zoneUuid, 'zoneUuid');
    await service.require(bsUuid, 'backupStorageUuid');
    const [ref] = await db
      .select()
      .from(backupStorageZoneRefs)
      .where(and(eq(backupStorageZoneRefs.zoneUuid, zoneUuid), eq(backupStorageZoneRefs.backupStorageUuid, bsUuid)));
    return !!ref;
  };

  app.addHandlers(
    defineHandlers({
      AddSimulatorBackupStorage: {
        async check(msg) {
          if (!app.options.simulatorUrl) throw argErr('no simulator agent is configured on this management node');
          if (msg.availableCapacity !== undefined && msg.totalCapacity !== undefined && msg.availableCapacity > msg.totalCapacity) {
            throw argErr(`field[availableCapacity]: ${msg.availableCapacity} is more than totalCapacity ${msg.totalCapacity}`);
          }
        },
        async run(msg) {
          const data = { uuid: msg.resourceUuid ?? newUuid() };
          await runFlow(
            'add-simulator-backup-storage',
            [
              writeStorageStep(db, backupStorage, data.uuid, () =>
                db.insert(backupStorage).values(newBackupStorageRow(data.uuid, msg, 'SimulatorBackupStorage')),
              ),
              {
                name: 'configure simulator',
                when: () => msg.totalCapacity !== undefined,
                run: async () =>
                  void (await app.agents.call(app.options.simulatorUrl!, '/simulator/backupstorage/config', {
                    backupStorageUuid: data.uuid,
                    totalCapacity: msg.totalCapacity,
                  })),
              },
              { name: 'connect', run: async () => void (await service.connect(data.uuid)) },
            ],
            data,
          );
          if (msg.availableCapacity !== undefined) {
            // The simulator derives what is free from its files; a smaller figure given here is kept until the next reply.
            const bs = await service.require(data.uuid);
            await service.recordCapacity(data.uuid, {
              success: true,
              totalCapacity: bs.totalCapacity,
              availableCapacity: Math.min(bs.availableCapacity, msg.availableCapacity),
            });
          }
          return { inventory: await service.inventory(data.uuid) };
        },
      },
      // Connecting → deploy the backup-storage agent → connect → Connected. A failure removes the backup storage
      // again (there is no reconnect API to repair a half-added one); its deploy log stays (QueryHostDeployLog).
      AddSftpBackupStorage: {
        async run(msg) {
          const data = { uuid: msg.resourceUuid ?? newUuid() };
          const credential = credentialVault(app).seal({ password: msg.password, agentSecret: newAgentSecret() });
          await runFlow(
            'add-sftp-backup-storage',
            [
              writeStorageStep(db, backupStorage, data.uuid, () =>
                db.insert(backupStorage).values({
                  ...newBackupStorageRow(data.uuid, msg, 'SftpBackupStorage'),
                  hostname: msg.hostname,
                  username: msg.username,
                  sshPort: msg.sshPort ?? 22,
                  credential,
                }),
              ),
              { name: 'deploy agent', run: async () => void (await service.deployAgent(await service.require(data.uuid))) },
              { name: 'connect', run: async () => void (await service.connect(data.uuid)) },
            ],
            data,
          );
          return { inventory: await service.inventory(data.uuid) };
        },
      },
      AttachBackupStorageToZone: {
        async check(msg) {
          if (await attachment(msg.zoneUuid, msg.backupStorageUuid)) {
            throw argErr(`backup storage[uuid:${msg.backupStorageUuid}] is already attached to zone[uuid:${msg.zoneUuid}]`);
          }
        },
        async run(msg) {
          await db.insert(backupStorageZoneRefs).values({ backupStorageUuid: msg.backupStorageUuid, zoneUuid: msg.zoneUuid }).onConflictDoNothing();
          return { inventory: await service.inventory(msg.backupStorageUuid) };
        },
      },
      DetachBackupStorageFromZone: {
        async check(msg) {
          if (!(await attachment(msg.zoneUuid, msg.backupStorageUuid))) {
            throw argErr(`backup storage[uuid:${msg.backupStorageUuid}] is not attached to zone[uuid:${msg.zoneUuid}]`);
          }
        },
        async run(msg) {
          await db
            .delete(backupStorageZoneRefs)
            .where(and(eq(backupStorageZoneRefs.zoneUuid, msg.zoneUuid), eq(backupStorageZoneRefs.backupStorageUuid, msg.backupStorageUuid)));
          return { inventory: await service.inventory(msg.backupStorageUuid) };
        },
      },
      DeleteBackupStorage: deleteHandler(app, { node: 'backupStorage' }),
    }),
  );
  return service;
}

/** The columns every Add*BackupStorage writes from its message (types add their own). */
function newBackupStorageRow(uuid: string, msg: { name: string; description?: string; url: string }, type: string) {
  return { uuid, name: msg.name, description: msg.description ?? null, url: msg.url, type };
}
