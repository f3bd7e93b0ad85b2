// Ceph primary and backup storage: a Ceph cluster reached through the Ceph agent of its monitors. Volumes are RBD
// images `ceph://<pool>/<volumeUuid>` made by the Ceph agent (not the hosts); a root volume is cloned from its image
// when the image is on a Ceph backup storage of the same cluster (same fsid), else copied into the image cache pool
// first. Backup storage images are `ceph://<pool>/<imageUuid>`. Capacities are the cluster's, carried on every reply.
// Monitors' SSH passwords are sealed by the node's vault and never returned. No real Ceph agent is deployed yet:
// the simulator agent serves simulated clusters over the same protocol.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { AgentPath, AgentRequest, AgentResponse } from '../agent-client/index.js';
import { credentialVault } from '../core/credentials.js';
import { formatDate } from '../core/dates.js';
import { argErr, err, notFound, stateErr, toApiError } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import {
  backupStorage,
  cephBackupStorage,
  cephBackupStorageMons,
  cephPrimaryStorage,
  cephPrimaryStorageMons,
  primaryStorage,
  zones,
} from '../db/schema/index.js';
import { backupStorageDescriptor, backupStorageInventories, type BackupStorageRow, type BackupStorageService } from './backup.js';
import { primaryStorageDescriptor, primaryStorageInventories, type PrimaryStorageRow, type PrimaryStorageService } from './primary.js';
import { defineBackupStorageInventoryFields, definePrimaryStorageInventoryFields, type BackupStorageCommand } from './types.js';

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

type MonTable = typeof cephPrimaryStorageMons | typeof cephBackupStorageMons;
type MonRow = typeof cephPrimaryStorageMons.$inferSelect | typeof cephBackupStorageMons.$inferSelect;

const monInventory = (m: MonRow, owner: { primaryStorageUuid?: string; backupStorageUuid?: string }) => ({
  monUuid: m.uuid,
  hostname: m.hostname,
  monAddr: m.monAddr ?? m.hostname,
  monPort: m.monPort,
  sshPort: m.sshPort,
  sshUsername: m.sshUsername,
  status: m.status as 'Connecting' | 'Connected' | 'Disconnected',
  ...owner,
  createDate: formatDate(m.createDate)!,
  lastOpDate: formatDate(m.lastOpDate)!,
});

async function psFields(rows: PrimaryStorageRow[], db: Tx) {
  const uuids = rows.map((r) => r.uuid);
  const ext = uuids.length ? await db.select().from(cephPrimaryStorage).where(inArray(cephPrimaryStorage.uuid, uuids)) : [];
  const mons = uuids.length
    ? await db.select().from(cephPrimaryStorageMons).where(inArray(cephPrimaryStorageMons.primaryStorageUuid, uuids)).orderBy(cephPrimaryStorageMons.createDate)
    : [];
  return new Map(
    ext.map((e) => [
      e.uuid,
      {
        fsid: e.fsid ?? undefined,
        rootVolumePoolName: e.rootVolumePoolName,
        dataVolumePoolName: e.dataVolumePoolName,
        imageCachePoolName: e.imageCachePoolName,
        mons: mons.filter((m) => m.primaryStorageUuid === e.uuid).map((m) => monInventory(m, { primaryStorageUuid: e.uuid })),
      },
    ]),
  );
}

async function bsFields(rows: BackupStorageRow[], db: Tx) {
  const uuids = rows.map((r) => r.uuid);
  const ext = uuids.length ? await db.select().from(cephBackupStorage).where(inArray(cephBackupStorage.uuid, uuids)) : [];
  const mons = uuids.length
    ? await db.select().from(cephBackupStorageMons).where(inArray(cephBackupStorageMons.backupStorageUuid, uuids)).orderBy(cephBackupStorageMons.createDate)
    : [];
  return new Map(
    ext.map((e) => [
      e.uuid,
      {
        fsid: e.fsid ?? undefined,
        poolName: e.poolName,
        mons: mons.filter((m) => m.backupStorageUuid === e.uuid).map((m) => monInventory(m, { backupStorageUuid: e.uuid })),
      },
    ]),
  );
}

definePrimaryStorageInventoryFields(CEPH_TYPE, psFields);
defineBackupStorageInventoryFields(CEPH_TYPE, bsFields);

const monExpansion = (table: 'primary' | 'backup') => ({
  inventory: table === 'primary' ? 'CephPrimaryStorageMonInventory' : 'CephBackupStorageMonInventory',
  localKey: 'uuid',
  remoteKey: table === 'primary' ? 'primaryStorageUuid' : 'backupStorageUuid',
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
const monDescriptor = (name: string, table: MonTable): InventoryDescriptor => ({
  name,
  table,
  fields: fieldsFromTable(table, { exclude: ['credential'] }),
  toInventories: async (rows: MonRow[]) =>
    rows.map((m) =>
      monInventory(
        m,
        'primaryStorageUuid' in m
          ? { primaryStorageUuid: m.primaryStorageUuid }
          : { backupStorageUuid: (m as { backupStorageUuid: string }).backupStorageUuid },
      ),
    ),
});

export function registerCephStorage(app: DomainContext, primary: PrimaryStorageService, backup: BackupStorageService): void {
  const { db } = app;
  app.addInventory(cephPrimaryStorageDescriptor);
  app.addInventory(cephBackupStorageDescriptor);
  app.addInventory(monDescriptor('CephPrimaryStorageMonInventory', cephPrimaryStorageMons));
  app.addInventory(monDescriptor('CephBackupStorageMonInventory', cephBackupStorageMons));
  const vault = () => credentialVault(app);

  /** A Ceph agent command for a storage (the simulator's clusters: no real Ceph agent is deployed yet). */
  const cephCall = async <P extends AgentPath>(storageUuid: string, path: P, body: AgentRequest<P>): Promise<AgentResponse<P>> => {
    if (!app.options.simulatorUrl) throw err('SYS.1006', 'Ceph storage is served by the simulator agent, and none is configured on this management node');
    return app.agents.call(app.options.simulatorUrl, path, body, { targetUuid: storageUuid });
  };
  const failed = (what: string, e: unknown) => {
    const cause = toApiError(e).error;
    return err('SYS.1006', `${what}: ${cause.details ?? cause.description}`, cause);
  };

  const psExt = async (uuid: string) => {
    const [e] = await db.select().from(cephPrimaryStorage).where(eq(cephPrimaryStorage.uuid, uuid));
    if (!e) throw err('SYS.1006', `primary storage[uuid:${uuid}] has no Ceph record`);
    return e;
  };
  const bsExt = async (uuid: string) => {
    const [e] = await db.select().from(cephBackupStorage).where(eq(cephBackupStorage.uuid, uuid));
    if (!e) throw err('SYS.1006', `backup storage[uuid:${uuid}] has no Ceph record`);
    return e;
  };
  const monHostnames = async (table: MonTable, ownerUuid: string) => {
    const key = table === cephPrimaryStorageMons ? cephPrimaryStorageMons.primaryStorageUuid : cephBackupStorageMons.backupStorageUuid;
    return (await db.select({ h: table.hostname }).from(table).where(eq(key, ownerUuid))).map((r) => r.h);
  };
  /** The cluster's size as the agent reports it; allocations already made stay taken. */
  const recordPsCapacity = async (uuid: string, r: { totalCapacity?: number; availableCapacity?: number }) => {
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
  const monRows = (mons: MonUri[]) =>
    mons.map((m) => ({
      uuid: newUuid(),
      hostname: m.hostname,
      monAddr: m.hostname,
      monPort: m.monPort,
      sshPort: m.sshPort,
      sshUsername: m.sshUsername,
      credential: vault().seal({ password: m.sshPassword }),
    }));
  /** Hostnames of `mons` some storage of this kind already uses (one hostname, one storage, as 1.1). */
  const usedHostnames = async (table: MonTable, mons: MonUri[]) =>
    mons.length
      ? (
          await db
            .select({ h: table.hostname })
            .from(table)
            .where(
              inArray(
                table.hostname,
                mons.map((m) => m.hostname),
              ),
            )
        ).map((r) => r.h)
      : [];

  /**
   * AddMonTo*: every new monitor must answer for the storage's cluster (its fsid) before any is kept; then all are
   * written at once.
   */
  const addMons = async (kind: 'primary' | 'backup', uuid: string, urls: string[]) => {
    const table = kind === 'primary' ? cephPrimaryStorageMons : cephBackupStorageMons;
    const mons = parseMons(urls);
    const existing = await monHostnames(table, uuid);
    const taken = [...mons.filter((m) => existing.includes(m.hostname)).map((m) => m.hostname), ...(await usedHostnames(table, mons))];
    if (taken.length) throw argErr(`field[monUrls]: monitor ${[...new Set(taken)].join(', ')} is already used by a Ceph ${kind} storage`);
    const fsid = kind === 'primary' ? (await psExt(uuid)).fsid : (await bsExt(uuid)).fsid;
    for (const m of mons) {
      const path = kind === 'primary' ? '/ceph/primarystorage/getfacts' : '/ceph/backupstorage/getfacts';
      let facts: { fsid?: string };
      try {
        facts = await cephCall(uuid, path, { uuid, fsid: fsid ?? undefined, monHostnames: existing, hostname: m.hostname, monPort: m.monPort });
      } catch (e) {
        throw failed(`monitor ${m.hostname} did not answer`, e);
      }
      if (fsid && facts.fsid !== fsid)
        throw argErr(`field[monUrls]: monitor ${m.hostname} belongs to Ceph cluster ${facts.fsid}, not to this storage's ${fsid}`);
    }
    const rows = monRows(mons);
    if (kind === 'primary') await db.insert(cephPrimaryStorageMons).values(rows.map((r) => ({ ...r, primaryStorageUuid: uuid })));
    else await db.insert(cephBackupStorageMons).values(rows.map((r) => ({ ...r, backupStorageUuid: uuid })));
  };
  const removeMons = async (kind: 'primary' | 'backup', uuid: string, hostnames: string[]) => {
    const table = kind === 'primary' ? cephPrimaryStorageMons : cephBackupStorageMons;
    const existing = await monHostnames(table, uuid);
    const gone = existing.filter((h) => hostnames.includes(h));
    if (gone.length && gone.length === existing.length)
      throw stateErr('SYS.1004', `cannot remove every monitor of Ceph ${kind} storage[uuid:${uuid}]; add another first`);
    if (!gone.length) return;
    const key = kind === 'primary' ? cephPrimaryStorageMons.primaryStorageUuid : cephBackupStorageMons.backupStorageUuid;
    await db.delete(table).where(and(eq(key, uuid), inArray(table.hostname, gone)));
  };
  const requireOfType = async <R extends { type: string }>(row: R | undefined, uuid: string, vo: string): Promise<R> => {
    if (!row) throw notFound(vo, uuid);
    if (row.type !== CEPH_TYPE) throw argErr(`field[uuid]: ${vo === 'PrimaryStorageVO' ? 'primary' : 'backup'} storage[uuid:${uuid}] is ${row.type}, not Ceph`);
    return row;
  };

  // ---------------------------------------------------------------- primary storage
  primary.registerType({
    name: CEPH_TYPE,
    async volumeInstallPath(ps, kind, volumeUuid) {
      const e = await psExt(ps.uuid);
      return `ceph://${kind === 'rootVolumes' ? e.rootVolumePoolName : e.dataVolumePoolName}/${volumeUuid}`;
    },
    async createVolume(ps, _host, cmd) {
      const e = await psExt(ps.uuid);
      const base = { uuid: ps.uuid, fsid: e.fsid ?? undefined };
      let reply: { totalCapacity?: number; availableCapacity?: number };
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
      await recordPsCapacity(ps.uuid, reply);
    },
    async deleteVolume(ps, _hostUuid, cmd) {
      const e = await psExt(ps.uuid);
      await recordPsCapacity(
        ps.uuid,
        await cephCall(ps.uuid, '/ceph/primarystorage/delete', { uuid: ps.uuid, fsid: e.fsid ?? undefined, installPath: cmd.installPath }),
      );
    },
    // The pools again (init is idempotent), through the monitors it has now.
    async reconnect(ps) {
      const e = await psExt(ps.uuid);
      const predefined = e.predefinedPools.split(',').filter(Boolean);
      const pools = [e.rootVolumePoolName, e.dataVolumePoolName, e.imageCachePoolName];
      const r = await cephCall(ps.uuid, '/ceph/primarystorage/init', {
        uuid: ps.uuid,
        fsid: e.fsid ?? undefined,
        monHostnames: await monHostnames(cephPrimaryStorageMons, ps.uuid),
        pools: [...new Set(pools)].map((name) => ({ name, predefined: predefined.includes(name) })),
      });
      if (e.fsid && r.fsid && r.fsid !== e.fsid) throw err('SYS.1006', `the monitors now answer for Ceph cluster ${r.fsid}, not ${e.fsid}`);
      await recordPsCapacity(ps.uuid, r);
    },
    async beforeDelete(ps) {
      const e = await psExt(ps.uuid);
      const predefined = e.predefinedPools.split(',').filter(Boolean);
      const pools = [e.rootVolumePoolName, e.dataVolumePoolName, e.imageCachePoolName].filter((p) => !predefined.includes(p));
      if (pools.length)
        await cephCall(ps.uuid, '/ceph/primarystorage/deletepool', { uuid: ps.uuid, fsid: e.fsid ?? undefined, poolNames: [...new Set(pools)] });
    },
  });

  // ---------------------------------------------------------------- backup storage
  const bsCall = async (bs: BackupStorageRow, path: BackupStorageCommand, body: unknown): Promise<unknown> => {
    const e = await bsExt(bs.uuid);
    const base = { uuid: bs.uuid, fsid: e.fsid ?? undefined };
    switch (path) {
      case '/backupstorage/connect': {
        const monHosts = await monHostnames(cephBackupStorageMons, bs.uuid);
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
          ...(await cephCall(bs.uuid, '/ceph/backupstorage/getfacts', { ...base, hostname: (await monHostnames(cephBackupStorageMons, bs.uuid))[0] ?? '' })),
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

  const zoneExists = async (zoneUuid: string) => {
    const [z] = await db.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, zoneUuid));
    if (!z) throw notFound('ZoneVO', zoneUuid, 'zoneUuid');
  };
  const psInventory = async (uuid: string) => (await primaryStorageInventories([await primary.require(uuid)], db))[0] as never;
  const bsInventory = async (uuid: string) => (await backupStorageInventories([await backup.require(uuid)], db))[0] as never;

  app.addHandlers(
    defineHandlers({
      AddCephPrimaryStorage: {
        async check(msg) {
          await zoneExists(msg.zoneUuid);
          const mons = parseMons(msg.monUrls);
          const used = await usedHostnames(cephPrimaryStorageMons, mons);
          if (used.length) throw argErr(`field[monUrls]: there is already Ceph primary storage using monitor ${used.join(', ')}`);
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
          await runFlow(
            'add-ceph-primary-storage',
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
                      type: CEPH_TYPE,
                      status: 'Connecting',
                    });
                    await tx.insert(cephPrimaryStorage).values({ uuid, ...pools, predefinedPools: predefined.join(',') });
                    await tx.insert(cephPrimaryStorageMons).values(monRows(mons).map((r) => ({ ...r, primaryStorageUuid: uuid })));
                  }),
                rollback: async () => void (await db.delete(primaryStorage).where(eq(primaryStorage.uuid, uuid))),
              },
              {
                name: 'init',
                async run() {
                  let r: AgentResponse<'/ceph/primarystorage/init'>;
                  try {
                    r = await cephCall(uuid, '/ceph/primarystorage/init', {
                      uuid,
                      monHostnames: mons.map((m) => m.hostname),
                      pools: [pools.rootVolumePoolName, pools.dataVolumePoolName, pools.imageCachePoolName].map((name) => ({
                        name,
                        predefined: predefined.includes(name),
                      })),
                    });
                  } catch (e) {
                    throw failed(`cannot initialize Ceph primary storage[uuid:${uuid}] through its monitors`, e);
                  }
                  await db
                    .update(cephPrimaryStorage)
                    .set({ fsid: r.fsid ?? null })
                    .where(eq(cephPrimaryStorage.uuid, uuid));
                  await db.update(primaryStorage).set({ status: 'Connected' }).where(eq(primaryStorage.uuid, uuid));
                  await recordPsCapacity(uuid, r);
                },
              },
            ],
            {},
          );
          return { inventory: await psInventory(uuid) };
        },
      },
      AddMonToCephPrimaryStorage: {
        async check(msg) {
          await requireOfType(await primary.get(msg.uuid), msg.uuid, 'PrimaryStorageVO');
          parseMons(msg.monUrls);
        },
        async run(msg) {
          await addMons('primary', msg.uuid, msg.monUrls);
          return { inventory: await psInventory(msg.uuid) };
        },
      },
      RemoveMonFromCephPrimaryStorage: {
        check: async (msg) => void (await requireOfType(await primary.get(msg.uuid), msg.uuid, 'PrimaryStorageVO')),
        async run(msg) {
          await removeMons('primary', msg.uuid, msg.monHostnames);
          return { inventory: await psInventory(msg.uuid) };
        },
      },
      AddCephBackupStorage: {
        async check(msg) {
          if (!app.options.simulatorUrl) throw argErr('Ceph storage is served by the simulator agent, and none is configured on this management node');
          const mons = parseMons(msg.monUrls);
          const used = await usedHostnames(cephBackupStorageMons, mons);
          if (used.length) throw argErr(`field[monUrls]: there is already Ceph backup storage using monitor ${used.join(', ')}`);
        },
        async run(msg) {
          const uuid = msg.resourceUuid ?? newUuid();
          const mons = parseMons(msg.monUrls);
          await runFlow(
            'add-ceph-backup-storage',
            [
              {
                name: 'write backup storage',
                run: async () =>
                  db.transaction(async (tx) => {
                    await tx.insert(backupStorage).values({ uuid, name: msg.name, description: msg.description ?? null, url: msg.url, type: CEPH_TYPE });
                    await tx.insert(cephBackupStorage).values({ uuid, poolName: msg.poolName ?? `bak-t-${uuid}`, poolPredefined: msg.poolName !== undefined });
                    await tx.insert(cephBackupStorageMons).values(monRows(mons).map((r) => ({ ...r, backupStorageUuid: uuid })));
                  }),
                rollback: async () => void (await db.delete(backupStorage).where(eq(backupStorage.uuid, uuid))),
              },
              { name: 'connect', run: async () => void (await backup.connect(uuid)) },
            ],
            {},
          );
          return { inventory: await bsInventory(uuid) };
        },
      },
      AddMonToCephBackupStorage: {
        async check(msg) {
          await requireOfType(await backup.get(msg.uuid), msg.uuid, 'BackupStorageVO');
          parseMons(msg.monUrls);
        },
        async run(msg) {
          await addMons('backup', msg.uuid, msg.monUrls);
          return { inventory: await bsInventory(msg.uuid) };
        },
      },
      RemoveMonFromCephBackupStorage: {
        check: async (msg) => void (await requireOfType(await backup.get(msg.uuid), msg.uuid, 'BackupStorageVO')),
        async run(msg) {
          await removeMons('backup', msg.uuid, msg.monHostnames);
          return { inventory: await bsInventory(msg.uuid) };
        },
      },
    }),
  );
}
