// Simulated Ceph clusters and iSCSI file-system servers, served by the simulator agent over the Ceph and iSCSI
// agent protocols (`/ceph/*`, `/iscsi/*`). Commands name their storage (X-Zstack-Target-Uuid); a Ceph storage is
// bound to a cluster at init by its monitors' hostnames, so a primary and a backup storage on the same monitors
// share one cluster (same fsid) and clone each other's images. Plain Maps, no timers.
import { randomUUID } from 'node:crypto';
import { AgentError, BadRequestError } from '../lib/errors.js';
import type { AgentPart, Ctx, HandlerMap } from '../lib/handler.js';
import type { FaultStore } from './faults.js';

const TiB = 1024 ** 4;
const MiB = 1024 ** 2;
export const STORAGE_CLUSTER_DEFAULT_CAPACITY = 10 * TiB;
/** Size of a pretend image download without `?size=`. */
const DEFAULT_IMAGE_SIZE = 64 * MiB;

interface RbdImage {
  size: number;
  parent?: string;
}

export interface SimulatedCephCluster {
  fsid: string;
  monHostnames: Set<string>;
  totalCapacity: number;
  pools: Set<string>;
  /** `ceph://<pool>/<name>` → image. */
  images: Map<string, RbdImage>;
}

export interface SimulatedIscsiServer {
  uuid: string;
  hostname?: string;
  rootFolderPath?: string;
  totalCapacity: number;
  /** Volume files and cached images: path → size. */
  images: Map<string, RbdImage>;
}

const used = (images: Map<string, RbdImage>) => [...images.values()].reduce((s, i) => s + i.size, 0);
const capacity = (total: number, images: Map<string, RbdImage>) => ({ totalCapacity: total, availableCapacity: Math.max(0, total - used(images)) });

/** `ceph://pool/name` → pool. */
function poolOf(path: string): string {
  const m = /^ceph:\/\/([^/]+)\/.+$/.exec(path);
  if (!m) throw new AgentError(`not an RBD path (ceph://<pool>/<name>): ${path}`);
  return m[1];
}

/** Size asked of a pretend download (`?size=`), else a default. */
function imageSizeOf(url: string): number {
  const size = /[?&]size=(\d+)/.exec(url)?.[1];
  return size ? Number(size) : DEFAULT_IMAGE_SIZE;
}

export class SimulatedStorageClusters {
  readonly ceph = new Map<string, SimulatedCephCluster>();
  private readonly cephOfStorage = new Map<string, string>();
  /** Capacity configured for a storage before its cluster exists. */
  private readonly configuredCapacity = new Map<string, number>();
  readonly iscsi = new Map<string, SimulatedIscsiServer>();

  configure(kind: 'ceph' | 'iscsi', uuid: string, totalCapacity: number | undefined): void {
    if (totalCapacity === undefined) return;
    this.configuredCapacity.set(uuid, totalCapacity);
    if (kind === 'iscsi') this.iscsiOf(uuid).totalCapacity = totalCapacity;
    else {
      const cluster = this.cephOf(uuid, {}, false);
      if (cluster) cluster.totalCapacity = totalCapacity;
    }
  }

  /** The cluster a storage was initialized on, else the one of the fsid or monitors in the command. */
  cephOf(uuid: string, body: { fsid?: string; monHostnames?: string[] }, required = true): SimulatedCephCluster | undefined {
    const fsid = this.cephOfStorage.get(uuid) ?? body.fsid;
    let cluster = fsid ? this.ceph.get(fsid) : undefined;
    cluster ??= [...this.ceph.values()].find((c) => body.monHostnames?.some((h) => c.monHostnames.has(h)));
    if (cluster) this.cephOfStorage.set(uuid, cluster.fsid);
    else if (required) throw new AgentError(`storage ${uuid} is not initialized on any simulated Ceph cluster`);
    return cluster;
  }

  /** init: the cluster of these monitors (made on first use), with the pools created. */
  cephInit(uuid: string, body: { fsid?: string; monHostnames?: string[] }, pools: string[]): SimulatedCephCluster {
    if (uuid === '') throw new BadRequestError('X-Zstack-Target-Uuid is required: the simulator serves many storages');
    if (!body.monHostnames?.length && !body.fsid && !this.cephOfStorage.has(uuid)) throw new AgentError('no monitor given');
    let cluster = this.cephOf(uuid, body, false);
    if (!cluster) {
      const fsid = randomUUID();
      cluster = { fsid, monHostnames: new Set(), totalCapacity: STORAGE_CLUSTER_DEFAULT_CAPACITY, pools: new Set(), images: new Map() };
      this.ceph.set(fsid, cluster);
      this.cephOfStorage.set(uuid, fsid);
    }
    const configured = this.configuredCapacity.get(uuid);
    if (configured !== undefined) cluster.totalCapacity = configured;
    for (const h of body.monHostnames ?? []) cluster.monHostnames.add(h);
    for (const p of pools) cluster.pools.add(p);
    return cluster;
  }

  iscsiOf(uuid: string): SimulatedIscsiServer {
    if (uuid === '') throw new BadRequestError('X-Zstack-Target-Uuid is required: the simulator serves many storages');
    let server = this.iscsi.get(uuid);
    if (!server) {
      server = { uuid, totalCapacity: this.configuredCapacity.get(uuid) ?? STORAGE_CLUSTER_DEFAULT_CAPACITY, images: new Map() };
      this.iscsi.set(uuid, server);
    }
    return server;
  }

  clear(): void {
    this.ceph.clear();
    this.cephOfStorage.clear();
    this.configuredCapacity.clear();
    this.iscsi.clear();
  }
}

function createImage(cluster: SimulatedCephCluster, path: string, image: RbdImage): void {
  const pool = poolOf(path);
  if (!cluster.pools.has(pool)) throw new AgentError(`pool ${pool} does not exist in cluster ${cluster.fsid}`);
  const existing = cluster.images.get(path);
  if (existing) {
    if (existing.size !== image.size) throw new AgentError(`${path} already exists with another size`);
    return;
  }
  const available = cluster.totalCapacity - used(cluster.images);
  if (image.size > available) throw new AgentError(`not enough space in cluster ${cluster.fsid}: need ${image.size}, have ${available}`);
  cluster.images.set(path, image);
}

/** The Ceph agent's commands (primary and backup storage) on simulated clusters. */
export function cephPart(s: SimulatedStorageClusters): AgentPart {
  const cluster = (ctx: Ctx<'CephPrimaryStorageDelete'> | Ctx<'CephBackupStorageDeleteImage'> | { target: string; body: object }) =>
    s.cephOf(ctx.target, ctx.body as { fsid?: string; monHostnames?: string[] })!;
  const facts = async (ctx: Ctx<'CephPrimaryStorageGetFacts'>) => {
    // A monitor not known yet joins the storage's cluster (the user adds a monitor of that cluster); a monitor of
    // another cluster answers that cluster's fsid, which the server refuses.
    const other = [...s.ceph.values()].find((c) => c.monHostnames.has(ctx.body.hostname));
    if (other) return { fsid: other.fsid, monAddr: ctx.body.hostname };
    const own = cluster(ctx);
    own.monHostnames.add(ctx.body.hostname);
    return { fsid: own.fsid, monAddr: ctx.body.hostname };
  };
  const remove = async (ctx: { target: string; body: { installPath: string } }) => {
    const c = cluster(ctx);
    if ([...c.images.values()].some((i) => i.parent === ctx.body.installPath)) throw new AgentError(`${ctx.body.installPath} has clones; delete them first`);
    c.images.delete(ctx.body.installPath);
    return {};
  };
  const handlers: HandlerMap = {
    CephPrimaryStorageInit: async (ctx) => ({
      fsid: s.cephInit(
        ctx.target,
        ctx.body,
        ctx.body.pools.map((p) => p.name),
      ).fsid,
      userKey: 'AQAsimulatedkey==',
    }),
    CephBackupStorageInit: async (ctx) => ({ fsid: s.cephInit(ctx.target, ctx.body, [ctx.body.pool.name]).fsid }),
    CephPrimaryStorageGetFacts: facts,
    CephBackupStorageGetFacts: facts as unknown as HandlerMap['CephBackupStorageGetFacts'],
    CephPrimaryStorageCreateEmptyVolume: async (ctx) => {
      createImage(cluster(ctx), ctx.body.installPath, { size: ctx.body.size });
      return {};
    },
    CephPrimaryStorageCloneVolume: async (ctx) => {
      const c = cluster(ctx);
      const src = c.images.get(ctx.body.srcPath);
      if (!src) throw new AgentError(`${ctx.body.srcPath} does not exist in cluster ${c.fsid}`);
      createImage(c, ctx.body.dstPath, { size: Math.max(src.size, ctx.body.size ?? 0), parent: ctx.body.srcPath });
      return {};
    },
    CephPrimaryStorageDownloadFromBackupStorage: async (ctx) => {
      const c = cluster(ctx);
      if (!c.images.has(ctx.body.primaryStorageInstallPath)) createImage(c, ctx.body.primaryStorageInstallPath, { size: ctx.body.size ?? DEFAULT_IMAGE_SIZE });
      return {};
    },
    CephPrimaryStorageDelete: remove,
    CephBackupStorageDeleteImage: remove,
    CephPrimaryStorageDeletePool: async (ctx) => {
      const c = cluster(ctx);
      for (const pool of ctx.body.poolNames) {
        if ([...c.images.keys()].some((p) => poolOf(p) === pool)) throw new AgentError(`pool ${pool} is not empty`);
        c.pools.delete(pool);
      }
      return {};
    },
    CephBackupStorageDownload: async (ctx) => {
      const size = imageSizeOf(ctx.body.url);
      createImage(cluster(ctx), ctx.body.installPath, { size });
      return { installPath: ctx.body.installPath, size };
    },
  };
  return {
    handlers,
    // Every reply carries the cluster's capacity (once the storage is bound to one).
    decorators: {
      ceph: async (target) => {
        const c = s.cephOf(target, {}, false);
        return c ? capacity(c.totalCapacity, c.images) : {};
      },
    },
  };
}

/** The iSCSI file-system agent's commands on simulated servers. */
export function iscsiPart(s: SimulatedStorageClusters): AgentPart {
  const target = (server: SimulatedIscsiServer, volumeUuid: string) => `iscsi://${server.hostname ?? '127.0.0.1'}:3260/iqn.2015-01.org.zstack:${volumeUuid}/1`;
  const initialized = (uuid: string) => {
    const server = s.iscsiOf(uuid);
    if (!server.rootFolderPath) throw new AgentError(`iSCSI server of storage ${uuid} is not initialized`);
    return server;
  };
  const create = (server: SimulatedIscsiServer, path: string, image: RbdImage) => {
    if (server.images.has(path)) return;
    const available = server.totalCapacity - used(server.images);
    if (image.size > available) throw new AgentError(`not enough space on iSCSI server ${server.hostname}: need ${image.size}, have ${available}`);
    server.images.set(path, image);
  };
  return {
    handlers: {
      IscsiFileSystemInit: async (ctx) => {
        if (!ctx.body.rootFolderPath.startsWith('/')) throw new AgentError(`rootFolderPath must be absolute: ${ctx.body.rootFolderPath}`);
        const server = s.iscsiOf(ctx.target);
        server.rootFolderPath = ctx.body.rootFolderPath;
        server.hostname = ctx.body.hostname ?? server.hostname;
        return {};
      },
      IscsiFileSystemGetCapacity: async (ctx) => (initialized(ctx.target), {}),
      IscsiFileSystemCreateEmptyVolume: async (ctx) => {
        const server = initialized(ctx.target);
        create(server, ctx.body.installPath, { size: ctx.body.size ?? 0 });
        return { iscsiPath: target(server, ctx.body.volumeUuid) };
      },
      IscsiFileSystemCreateRootVolume: async (ctx) => {
        const server = initialized(ctx.target);
        const cache = ctx.body.templatePathInCache;
        if (cache && !server.images.has(cache)) {
          if (!ctx.body.backupStorageInstallPath) throw new AgentError(`image ${cache} is not in the cache and no backup storage path was given`);
          create(server, cache, { size: DEFAULT_IMAGE_SIZE });
        }
        create(server, ctx.body.installPath, { size: ctx.body.size ?? 0, ...(cache ? { parent: cache } : {}) });
        return { iscsiPath: target(server, ctx.body.volumeUuid) };
      },
      IscsiFileSystemDeleteBits: async (ctx) => {
        s.iscsiOf(ctx.target).images.delete(ctx.body.installPath);
        return {};
      },
    } as HandlerMap,
    decorators: {
      iscsi: async (uuid) => {
        const server = s.iscsi.get(uuid);
        return server ? capacity(server.totalCapacity, server.images) : {};
      },
    },
  };
}

/** The simulator's control over them: knobs (per storage uuid) and state. */
export function storageClusterControl(s: SimulatedStorageClusters, faults: FaultStore): HandlerMap {
  return {
    SimulatorStorageClusterConfig: async (ctx) => {
      const { kind, uuid, totalCapacity } = ctx.body;
      s.configure(kind, uuid, totalCapacity);
      return { config: faults.update(kind, uuid, ctx.body) };
    },
    SimulatorStorageClusterState: async (ctx) => {
      const { kind, uuid } = ctx.body;
      const images = (m: Map<string, RbdImage>) => [...m].map(([path, i]) => ({ path, size: i.size, ...(i.parent ? { parent: i.parent } : {}) }));
      if (kind === 'iscsi') {
        const server = s.iscsi.get(uuid);
        if (!server) throw new AgentError(`no simulated iSCSI server for storage ${uuid}`);
        return { images: images(server.images), ...capacity(server.totalCapacity, server.images) };
      }
      const c = s.cephOf(uuid, {}, false);
      if (!c) throw new AgentError(`no simulated Ceph cluster for storage ${uuid}`);
      return { fsid: c.fsid, monHostnames: [...c.monHostnames], pools: [...c.pools], images: images(c.images), ...capacity(c.totalCapacity, c.images) };
    },
  };
}
