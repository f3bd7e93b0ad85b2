// Ceph primary and backup storage: a Ceph cluster reached through the Ceph agent of its monitors. Volumes are RBD
// images `ceph://<pool>/<volumeUuid>` made by the Ceph agent (not the hosts); a root volume is cloned from its image
// when the image is on a Ceph backup storage of the same cluster (same fsid), else copied into the image cache pool
// first. Backup storage images are `ceph://<pool>/<imageUuid>`. Capacities are the cluster's, carried on every reply.
// Monitors' SSH passwords are sealed by the node's vault and never returned. No real Ceph agent is deployed yet:
// the simulator agent serves simulated clusters over the same protocol.
import { and, eq, inArray } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { AgentRequest } from '../agent-client/index.js';
import { credentialVault } from '../core/credentials.js';
import { formatDate } from '../core/dates.js';
import { argErr, err, notFound, stateErr } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import { backupStorage, cephBackupStorage, cephBackupStorageMons, cephPrimaryStorage, cephPrimaryStorageMons } from '../db/schema/index.js';
import { addAgentPrimaryStorage, agentFailure, simulatedStorageAgent, typeRecord, writeStorageStep } from './agent-storage.js';
import { backupStorageDescriptor, type BackupStorageRow, type BackupStorageService } from './backup.js';
import { primaryStorageDescriptor, type PrimaryStorageRow, type PrimaryStorageService } from './primary.js';
import { defineBackupStorageInventoryFields, definePrimaryStorageInventoryFields, type BackupStorageCommand, type CapacityReply } from './types.js';

export const CEPH_TYPE = 'Ceph';
const MON_URL_FORMAT = 'sshUsername:sshPassword@hostname[:sshPort]/?monPort=N';

export interface MonUri {
  hostname: string;
  sshUsername: string;
  sshPassword: string;
  sshPort: number;
  monPort: number;
}

/** 1.1's MonUri: `user:password@host[:sshPort][/?monPort=N]`; monPort is the only query parameter. */
export function parseMonUrl(url: string): MonUri {
  const bad = (why: string) => argErr(`field[monUrls]: invalid monUrl (${why}); a valid monUrl is ${MON_URL_FORMAT}`);
  const at = url.lastIndexOf('@');
  if (at < 0) throw bad('no sshUsername:sshPassword@');
  const user = url.slice(0, at);
  const colon = user.indexOf(':');
  if (colon <= 0 || colon === user.length - 1) throw bad('the sshUsername:sshPassword part is invalid');
  let parsed: URL;
  try {
    parsed = new URL(`ssh://${url.slice(at + 1)}`);
  } catch {
    throw bad('the hostname part is invalid');
  }
  if (!parsed.hostname) throw bad('no hostname');
  for (const key of parsed.searchParams.keys()) if (key !== 'monPort') throw bad(`unknown parameter ${key}`);
  const sshPort = parsed.port ? Number(parsed.port) : 22;
  const monPortText = parsed.searchParams.get('monPort');
  const monPort = monPortText === null ? 6789 : Number(monPortText);
  if (!Number.isInteger(monPort) || monPort < 1 || monPort > 65535) throw bad('monPort must be 1-65535');
  return { hostname: parsed.hostname, sshUsername: user.slice(0, colon), sshPassword: user.slice(colon + 1), sshPort, monPort };
}

/** Parsed monitors, refusing a hostname given twice. */
function parseMons(urls: string[]): MonUri[] {
  const mons = urls.map(parseMonUrl);
  const seen = new Set<string>();
  for (const m of mons) {
    if (seen.has(m.hostname)) throw argErr(`field[monUrls]: monitor ${m.hostname} is given twice`);
    seen.add(m.hostname);
  }
  return mons;
}

type Kind = 'primary' | 'backup';
type MonRow = typeof cephPrimaryStorageMons.$inferSelect | typeof cephBackupStorageMons.$inferSelect;

/** A Ceph storage's monitors: their table and the column naming the storage, per kind of storage. */
const MONS = {
  primary: { table: cephPrimaryStorageMons, storageUuid: cephPrimaryStorageMons.primaryStorageUuid },
  backup: { table: cephBackupStorageMons, storageUuid: cephBackupStorageMons.backupStorageUuid },
} as const;

const monInventory = (m: MonRow) => ({
  monUuid: m.uuid,
  hostname: m.hostname,
  monAddr: m.monAddr ?? m.hostname,
  monPort: m.monPort,
  sshPort: m.sshPort,
  sshUsername: m.sshUsername,
  status: m.status as 'Connecting' | 'Connected' | 'Disconnected',
  ...('primaryStorageUuid' in m ? { primaryStorageUuid: m.primaryStorageUuid } : { backupStorageUuid: m.backupStorageUuid }),
  createDate: formatDate(m.createDate)!,
  lastOpDate: formatDate(m.lastOpDate)!,
});

/** The monitors' inventories of each storage (oldest first; none: an empty list). */
async function monInventoriesOf(kind: Kind, uuids: string[], db: Tx) {
  const { table, storageUuid } = MONS[kind];
  const rows: MonRow[] = uuids.length ? await db.select().from(table).where(inArray(storageUuid, uuids)).orderBy(table.createDate) : [];
  const out = new Map(uuids.map((u) => [u, [] as ReturnType<typeof monInventory>[]]));
  for (const m of rows) out.get('primaryStorageUuid' in m ? m.primaryStorageUuid : m.backupStorageUuid)?.push(monInventory(m));
  return out;
}

async function psFields(rows: PrimaryStorageRow[], db: Tx) {
  const uuids = rows.map((r) => r.uuid);
  const ext = uuids.length ? await db.select().from(cephPrimaryStorage).where(inArray(cephPrimaryStorage.uuid, uuids)) : [];
  const mons = await monInventoriesOf('primary', uuids, db);
  return new Map(
    ext.map((e) => [
      e.uuid,
      {
        fsid: e.fsid ?? undefined,
        rootVolumePoolName: e.rootVolumePoolName,
        dataVolumePoolName: e.dataVolumePoolName,
        imageCachePoolName: e.imageCachePoolName,
        mons: mons.get(e.uuid)!,
      },
    ]),
  );
}

async function bsFields(rows: BackupStorageRow[], db: Tx) {
  const uuids = rows.map((r) => r.uuid);
  const ext = uuids.length ? await db.select().from(cephBackupStorage).where(inArray(cephBackupStorage.uuid, uuids)) : [];
  const mons = await monInventoriesOf('backup', uuids, db);
  return new Map(ext.map((e) => [e.uuid, { fsid: e.fsid ?? undefined, poolName: e.poolName, mons: mons.get(e.uuid)! }]));
}

definePrimaryStorageInventoryFields(CEPH_TYPE, psFields);
defineBackupStorageInventoryFields(CEPH_TYPE, bsFields);

// One-to-many: the name is 1.1's, not the key's.
const monExpansion = (kind: Kind) => ({
  inventory: kind === 'primary' ? 'CephPrimaryStorageMonInventory' : 'CephBackupStorageMonInventory',
  localKey: 'uuid',
  remoteKey: kind === 'primary' ? 'primaryStorageUuid' : 'backupStorageUuid',
});

export const cephPrimaryStorageDescriptor: InventoryDescriptor<PrimaryStorageRow> = {
  ...primaryStorageDescriptor,
  name: 'CephPrimaryStorageInventory',
  expand: { ...primaryStorageDescriptor.expand, mons: monExpansion('primary') },
  where: (t) => eq(t.type, CEPH_TYPE),
};
export const cephBackupStorageDescriptor: InventoryDescriptor<BackupStorageRow> = {
  ...backupStorageDescriptor,
  name: 'CephBackupStorageInventory',
  expand: { ...backupStorageDescriptor.expand, mons: monExpansion('backup') },
  where: (t) => eq(t.type, CEPH_TYPE),
};
const monDescriptor = (name: string, kind: Kind): InventoryDescriptor<MonRow> => ({
  name,
  table: MONS[kind].table,
  fields: fieldsFromTable(MONS[kind].table, { exclude: ['credential'] }),
  toInventories: async (rows) => rows.map(monInventory),
});

export function registerCephStorage(app: DomainContext, primary: PrimaryStorageService, backup: BackupStorageService): void {
  const { db } = app;
  app.addInventory(cephPrimaryStorageDescriptor);
  app.addInventory(cephBackupStorageDescriptor);
  app.addInventory(monDescriptor('CephPrimaryStorageMonInventory', 'primary'));
  app.addInventory(monDescriptor('CephBackupStorageMonInventory', 'backup'));
  const vault = () => credentialVault(app);

  const cephCall = simulatedStorageAgent(app, CEPH_TYPE);
  const psExt = typeRecord(db, cephPrimaryStorage, 'primary', CEPH_TYPE);
  const bsExt = typeRecord(db, cephBackupStorage, 'backup', CEPH_TYPE);
  const inventory = async (kind: Kind, uuid: string) => (kind === 'primary' ? await primary.inventory(uuid) : await backup.inventory(uuid)) as never;
  const monHostnames = async (kind: Kind, storageUuid: string) => {
    const { table, storageUuid: column } = MONS[kind];
    return (await db.select({ h: table.hostname }).from(table).where(eq(column, storageUuid))).map((r) => r.h);
  };
  /** Writes `mons` as the monitors of the storage `uuid` (their SSH passwords sealed). */
  const insertMons = async (tx: Tx, kind: Kind, uuid: string, mons: MonUri[]) => {
    const rows = mons.map((m) => ({
      uuid: newUuid(),
      hostname: m.hostname,
      monAddr: m.hostname,
      monPort: m.monPort,
      sshPort: m.sshPort,
      sshUsername: m.sshUsername,
      credential: vault().seal({ password: m.sshPassword }),
    }));
    if (kind === 'primary') await tx.insert(cephPrimaryStorageMons).values(rows.map((r) => ({ ...r, primaryStorageUuid: uuid })));
    else await tx.insert(cephBackupStorageMons).values(rows.map((r) => ({ ...r, backupStorageUuid: uuid })));
  };
  /** Hostnames of `mons` some storage of this kind already uses (one hostname, one storage, as 1.1). */
  const usedHostnames = async (kind: Kind, mons: MonUri[]) => {
    const { table } = MONS[kind];
    if (!mons.length) return [];
    const hostnames = mons.map((m) => m.hostname);
    return (await db.select({ h: table.hostname }).from(table).where(inArray(table.hostname, hostnames))).map((r) => r.h);
  };
  /** AddCeph*Storage: no monitor of a new storage may serve another storage of its kind. */
  const refuseUsedMons = async (kind: Kind, mons: MonUri[]) => {
    const used = await usedHostnames(kind, mons);
    if (used.length) throw argErr(`field[monUrls]: there is already Ceph ${kind} storage using monitor ${used.join(', ')}`);
  };

  /**
   * AddMonTo*: every new monitor must answer for the storage's cluster (its fsid) before any is kept; then all are
   * written at once.
   */
  const addMons = async (kind: Kind, uuid: string, urls: string[]) => {
    const mons = parseMons(urls);
    const existing = await monHostnames(kind, uuid);
    const taken = [...mons.filter((m) => existing.includes(m.hostname)).map((m) => m.hostname), ...(await usedHostnames(kind, mons))];
    if (taken.length) throw argErr(`field[monUrls]: monitor ${[...new Set(taken)].join(', ')} is already used by a Ceph ${kind} storage`);
    const fsid = kind === 'primary' ? (await psExt(uuid)).fsid : (await bsExt(uuid)).fsid;
    for (const m of mons) {
      const path = kind === 'primary' ? '/ceph/primarystorage/getfacts' : '/ceph/backupstorage/getfacts';
      let facts: { fsid?: string };
      try {
        facts = await cephCall(uuid, path, { uuid, fsid: fsid ?? undefined, monHostnames: existing, hostname: m.hostname, monPort: m.monPort });
      } catch (e) {
        throw agentFailure(`monitor ${m.hostname} did not answer`, e);
      }
      if (fsid && facts.fsid !== fsid)
        throw argErr(`field[monUrls]: monitor ${m.hostname} belongs to Ceph cluster ${facts.fsid}, not to this storage's ${fsid}`);
    }
    await insertMons(db, kind, uuid, mons);
  };
  const removeMons = async (kind: Kind, uuid: string, hostnames: string[]) => {
    const { table, storageUuid } = MONS[kind];
    const existing = await monHostnames(kind, uuid);
    const gone = existing.filter((h) => hostnames.includes(h));
    if (gone.length && gone.length === existing.length)
      throw stateErr('SYS.1004', `cannot remove every monitor of Ceph ${kind} storage[uuid:${uuid}]; add another first`);
    if (!gone.length) return;
    await db.delete(table).where(and(eq(storageUuid, uuid), inArray(table.hostname, gone)));
  };
  const requireCeph = async (kind: Kind, uuid: string) => {
    const row = kind === 'primary' ? await primary.get(uuid) : await backup.get(uuid);
    if (!row) throw notFound(kind === 'primary' ? 'PrimaryStorageVO' : 'BackupStorageVO', uuid);
    if (row.type !== CEPH_TYPE) throw argErr(`field[uuid]: ${kind} storage[uuid:${uuid}] is ${row.type}, not Ceph`);
  };
  /** AddMonToCeph*Storage and RemoveMonFromCeph*Storage. */
  const monHandlers = (kind: Kind) => ({
    add: {
      async check(msg: { uuid: string; monUrls: string[] }) {
        await requireCeph(kind, msg.uuid);
        parseMons(msg.monUrls);
      },
      async run(msg: { uuid: string; monUrls: string[] }) {
        await addMons(kind, msg.uuid, msg.monUrls);
        return { inventory: await inventory(kind, msg.uuid) };
      },
    },
    remove: {
      check: async (msg: { uuid: string }) => void (await requireCeph(kind, msg.uuid)),
      async run(msg: { uuid: string; monHostnames: string[] }) {
        await removeMons(kind, msg.uuid, msg.monHostnames);
        return { inventory: await inventory(kind, msg.uuid) };
      },
    },
  });

  // ---------------------------------------------------------------- primary storage
  /** The pools of a Ceph primary storage, and those given when it was added (they are not created or deleted here). */
  const poolsOf = (e: typeof cephPrimaryStorage.$inferSelect) => ({
    pools: [e.rootVolumePoolName, e.dataVolumePoolName, e.imageCachePoolName],
    predefined: e.predefinedPools.split(',').filter(Boolean),
  });
  primary.registerType({
    name: CEPH_TYPE,
    async volumeInstallPath(ps, kind, volumeUuid) {
      const e = await psExt(ps.uuid);
      return `ceph://${kind === 'rootVolumes' ? e.rootVolumePoolName : e.dataVolumePoolName}/${volumeUuid}`;
    },
    async createVolume(ps, _host, cmd) {
      const e = await psExt(ps.uuid);
      const base = { uuid: ps.uuid, fsid: e.fsid ?? undefined };
      let reply: CapacityReply;
      if (cmd.backupStorageUuid && cmd.backupStorageInstallPath) {
        const [bs] = await db.select().from(backupStorage).where(eq(backupStorage.uuid, cmd.backupStorageUuid));
        const bsFsid = bs?.type === CEPH_TYPE ? (await bsExt(bs.uuid)).fsid : undefined;
        let src = cmd.backupStorageInstallPath;
        if (!bsFsid || bsFsid !== e.fsid) {
          // Another cluster or kind of backup storage: the image is copied into the cache pool once, then cloned.
          const name = src
            .split('/')
            .pop()!
            .replace(/\.[^.]*$/, '');
          const cached = `ceph://${e.imageCachePoolName}/${name}`;
          await cephCall(ps.uuid, '/ceph/primarystorage/sftpbackupstorage/download', {
            ...base,
            backupStorageUuid: cmd.backupStorageUuid,
            backupStorageInstallPath: src,
            primaryStorageInstallPath: cached,
          });
          src = cached;
        }
        reply = await cephCall(ps.uuid, '/ceph/primarystorage/volume/clone', { ...base, srcPath: src, dstPath: cmd.installPath, size: cmd.size });
      } else {
        reply = await cephCall(ps.uuid, '/ceph/primarystorage/volume/createempty', { ...base, installPath: cmd.installPath, size: cmd.size });
      }
      await primary.recordCapacity(ps.uuid, reply);
    },
    async deleteVolume(ps, _hostUuid, cmd) {
      const e = await psExt(ps.uuid);
      await primary.recordCapacity(
        ps.uuid,
        await cephCall(ps.uuid, '/ceph/primarystorage/delete', { uuid: ps.uuid, fsid: e.fsid ?? undefined, installPath: cmd.installPath }),
      );
    },
    // The pools again (init is idempotent), through the monitors it has now.
    async reconnect(ps) {
      const e = await psExt(ps.uuid);
      const { pools, predefined } = poolsOf(e);
      const r = await cephCall(ps.uuid, '/ceph/primarystorage/init', {
        uuid: ps.uuid,
        fsid: e.fsid ?? undefined,
        monHostnames: await monHostnames('primary', ps.uuid),
        pools: [...new Set(pools)].map((name) => ({ name, predefined: predefined.includes(name) })),
      });
      if (e.fsid && r.fsid && r.fsid !== e.fsid) throw err('SYS.1006', `the monitors now answer for Ceph cluster ${r.fsid}, not ${e.fsid}`);
      await primary.recordCapacity(ps.uuid, r);
    },
    async beforeDelete(ps) {
      const e = await psExt(ps.uuid);
      const { pools, predefined } = poolsOf(e);
      const own = pools.filter((p) => !predefined.includes(p));
      if (own.length) await cephCall(ps.uuid, '/ceph/primarystorage/deletepool', { uuid: ps.uuid, fsid: e.fsid ?? undefined, poolNames: [...new Set(own)] });
    },
  });

  // ---------------------------------------------------------------- backup storage
  const bsCall = async (bs: BackupStorageRow, path: BackupStorageCommand, body: unknown): Promise<unknown> => {
    const e = await bsExt(bs.uuid);
    const base = { uuid: bs.uuid, fsid: e.fsid ?? undefined };
    switch (path) {
      case '/backupstorage/connect': {
        const monHosts = await monHostnames('backup', bs.uuid);
        const r = await cephCall(bs.uuid, '/ceph/backupstorage/init', {
          ...base,
          monHostnames: monHosts,
          pool: { name: e.poolName, predefined: e.poolPredefined },
        });
        if (r.fsid && r.fsid !== e.fsid) await db.update(cephBackupStorage).set({ fsid: r.fsid }).where(eq(cephBackupStorage.uuid, bs.uuid));
        return r;
      }
      case '/backupstorage/ping':
        return {
          ...(await cephCall(bs.uuid, '/ceph/backupstorage/getfacts', { ...base, hostname: (await monHostnames('backup', bs.uuid))[0] ?? '' })),
          uuid: bs.uuid,
        };
      case '/backupstorage/download': {
        const cmd = body as AgentRequest<'/backupstorage/download'>;
        return cephCall(bs.uuid, '/ceph/backupstorage/image/download', {
          ...base,
          imageUuid: cmd.imageUuid,
          installPath: `ceph://${e.poolName}/${cmd.imageUuid}`,
          url: cmd.url,
        });
      }
      case '/backupstorage/download/progress':
        return { success: true }; // the Ceph agent reports no progress (1.1's neither)
      case '/backupstorage/delete':
        return cephCall(bs.uuid, '/ceph/backupstorage/image/delete', { ...base, installPath: (body as { installPath: string }).installPath });
    }
  };
  backup.registerType({
    name: CEPH_TYPE,
    simulated: true,
    storagePath: (bs) => `ceph://${bs.uuid}`, // a placeholder: the download names the image's RBD path
    call: (bs, path, body) => bsCall(bs, path, body),
  });

  const primaryMons = monHandlers('primary');
  const backupMons = monHandlers('backup');
  app.addHandlers(
    defineHandlers({
      AddCephPrimaryStorage: {
        async check(msg) {
          await primary.requireZone(msg.zoneUuid);
          await refuseUsedMons('primary', parseMons(msg.monUrls));
        },
        // Write the rows → init on the cluster (pools, fsid, capacity). A failure removes everything written.
        async run(msg) {
          const uuid = msg.resourceUuid ?? newUuid();
          const mons = parseMons(msg.monUrls);
          const pools = {
            rootVolumePoolName: msg.rootVolumePoolName ?? `pri-v-r-${uuid}`,
            dataVolumePoolName: msg.dataVolumePoolName ?? `pri-v-d-${uuid}`,
            imageCachePoolName: msg.imageCachePoolName ?? `pri-c-${uuid}`,
          };
          const predefined = [msg.rootVolumePoolName, msg.dataVolumePoolName, msg.imageCachePoolName].filter((p): p is string => !!p);
          await addAgentPrimaryStorage(primary, {
            flow: 'add-ceph-primary-storage',
            row: { uuid, zoneUuid: msg.zoneUuid, name: msg.name, description: msg.description ?? null, url: msg.url, type: CEPH_TYPE },
            async writeTypeRows(tx) {
              await tx.insert(cephPrimaryStorage).values({ uuid, ...pools, predefinedPools: predefined.join(',') });
              await insertMons(tx, 'primary', uuid, mons);
            },
            async init() {
              const r = await cephCall(uuid, '/ceph/primarystorage/init', {
                uuid,
                monHostnames: mons.map((m) => m.hostname),
                pools: [pools.rootVolumePoolName, pools.dataVolumePoolName, pools.imageCachePoolName].map((name) => ({
                  name,
                  predefined: predefined.includes(name),
                })),
              });
              await db
                .update(cephPrimaryStorage)
                .set({ fsid: r.fsid ?? null })
                .where(eq(cephPrimaryStorage.uuid, uuid));
              return r;
            },
            initFailure: `cannot initialize Ceph primary storage[uuid:${uuid}] through its monitors`,
          });
          return { inventory: await inventory('primary', uuid) };
        },
      },
      AddMonToCephPrimaryStorage: primaryMons.add,
      RemoveMonFromCephPrimaryStorage: primaryMons.remove,
      AddCephBackupStorage: {
        async check(msg) {
          if (!app.options.simulatorUrl) throw argErr('Ceph storage is served by the simulator agent, and none is configured on this management node');
          await refuseUsedMons('backup', parseMons(msg.monUrls));
        },
        async run(msg) {
          const uuid = msg.resourceUuid ?? newUuid();
          const mons = parseMons(msg.monUrls);
          await runFlow(
            'add-ceph-backup-storage',
            [
              writeStorageStep(db, backupStorage, uuid, () =>
                db.transaction(async (tx) => {
                  await tx.insert(backupStorage).values({ uuid, name: msg.name, description: msg.description ?? null, url: msg.url, type: CEPH_TYPE });
                  await tx.insert(cephBackupStorage).values({ uuid, poolName: msg.poolName ?? `bak-t-${uuid}`, poolPredefined: msg.poolName !== undefined });
                  await insertMons(tx, 'backup', uuid, mons);
                }),
              ),
              { name: 'connect', run: async () => void (await backup.connect(uuid)) },
            ],
            {},
          );
          return { inventory: await inventory('backup', uuid) };
        },
      },
      AddMonToCephBackupStorage: backupMons.add,
      RemoveMonFromCephBackupStorage: backupMons.remove,
    }),
  );
}
