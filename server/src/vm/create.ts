// Creating a VM: the CreateVmInstance checks (upstream's VmInstanceApiInterceptor, answered before the 202) turn a
// message into a spec; the create flow persists the VM, its volumes and NICs, then (unless JustCreate) runs the
// start steps. Any failing step rolls everything back: host and storage capacity, IPs, NICs, volumes, the VM row.
import { vmLockKey, type Placement, type StartData } from './ops.js';
import { eq, inArray, sql } from 'drizzle-orm';
import { decodeRow } from '../db/index.js';
import { bindAll, StatementTemplates, within } from '../db/perf/template.js';
import type { DomainContext } from '../core/domain.js';
import { argErr, err, notFound } from '../core/errors.js';
import { runFlow, type FlowStep } from '../core/flow.js';
import type { Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import {
  clusters,
  diskOfferings,
  hosts,
  images,
  instanceOfferings,
  l3Networks,
  primaryStorage,
  vmInstances,
  vmNics,
  volumes,
  zones,
} from '../db/schema/index.js';
import { allocateHost, bindHostReservation, DEFAULT_ALLOCATOR_STRATEGY, type HostRequirement, type HostRow } from './allocation/host-allocator.js';
import { bindFreeIpInsert } from '../network/index.js';
import { bindPrimaryStoragePick, bindPrimaryStorageReservation } from './allocation/primary-storage-allocator.js';
import type { NicRow, VmRow, VolumeRow } from './inventory.js';
import { allocateNic, deleteNic } from './nics.js';
import { staticIpsOf } from './tags.js';
import type { VmService } from './service.js';
import { installPathOf } from './start-flow.js';

export type ImageRow = typeof images.$inferSelect;
export type CreateStrategy = 'InstantStart' | 'JustCreate' | 'CreateStopped';

export interface VmCreateSpec {
  name: string;
  description?: string;
  type: 'UserVm' | 'ApplianceVm';
  cpuNum: number;
  memorySize: number;
  cpuSpeed: number;
  instanceOfferingUuid?: string;
  allocatorStrategy: string;
  image: ImageRow;
  rootDiskSize: number;
  rootDiskOfferingUuid?: string;
  dataDisks: Array<{ size: number; diskOfferingUuid: string }>;
  /** One NIC per entry, device ids in this order. */
  nics: Array<{ l3NetworkUuid: string; metaData?: string; staticIp?: string }>;
  defaultL3NetworkUuid?: string;
  zoneUuid: string;
  placement: Placement;
  strategy: CreateStrategy;
  /** The new VM's uuid when the caller chose it. */
  uuid?: string;
  appliance?: {
    applianceVmType: string;
    managementNetworkUuid: string;
    publicNetworkUuid: string;
    defaultRouteL3NetworkUuid: string;
    status: string;
  };
}

/** CreateVmInstance's fields. */
export type CreateVmInstanceParams = Message<'CreateVmInstance'>;

/** CreateVmInstance's checks; the spec they produce. */
export async function specFromMessage(app: DomainContext, msg: CreateVmInstanceParams): Promise<VmCreateSpec> {
  const db = app.db;
  let cpuNum = msg.cpuNum;
  let memorySize = msg.memorySize;
  let cpuSpeed = 0;
  let allocatorStrategy = DEFAULT_ALLOCATOR_STRATEGY;
  if (msg.instanceOfferingUuid) {
    const uuid = msg.instanceOfferingUuid;
    const [o] = await app.remembered(`InstanceOffering:${uuid}`, () => db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, uuid)));
    if (!o || o.type !== 'UserVm') throw notFound('InstanceOfferingVO', msg.instanceOfferingUuid, 'instanceOfferingUuid');
    if (o.state !== 'Enabled') throw argErr(`instance offering[uuid:${o.uuid}] is ${o.state}, it cannot be used to create VMs`);
    cpuNum = o.cpuNum;
    memorySize = o.memorySize;
    cpuSpeed = o.cpuSpeed;
    allocatorStrategy = o.allocatorStrategy ?? DEFAULT_ALLOCATOR_STRATEGY;
  }
  if (!cpuNum || !memorySize) throw argErr('Missing CPU/memory settings: give instanceOfferingUuid, or cpuNum and memorySize');

  const [image] = await app.remembered(`Image:${msg.imageUuid}`, () => db.select().from(images).where(eq(images.uuid, msg.imageUuid)));
  if (!image) throw notFound('ImageVO', msg.imageUuid, 'imageUuid');
  if (image.state !== 'Enabled') throw argErr(`image[uuid:${image.uuid}] is ${image.state}; only an Enabled image can create a VM`);
  if (image.status !== 'Ready') throw argErr(`image[uuid:${image.uuid}] is ${image.status}; only a Ready image can create a VM`);
  if (image.mediaType !== 'RootVolumeTemplate' && image.mediaType !== 'ISO') {
    throw argErr(`image[uuid:${image.uuid}] is a ${image.mediaType}; a VM needs a RootVolumeTemplate or an ISO`);
  }
  if (image.system) throw argErr(`image[uuid:${image.uuid}] is a system image; it cannot create a user VM`);

  let rootDiskSize = image.size;
  let rootDiskOfferingUuid: string | undefined;
  if (msg.rootDiskOfferingUuid) {
    const o = await diskOffering(app, msg.rootDiskOfferingUuid, 'rootDiskOfferingUuid');
    rootDiskOfferingUuid = o.uuid;
    if (image.mediaType === 'ISO') rootDiskSize = o.diskSize;
  } else if (image.mediaType === 'ISO') {
    throw argErr(`rootDiskOfferingUuid is mandatory: image[uuid:${image.uuid}] is an ISO, the root disk size must come from a disk offering`);
  }
  const dataDisks = [];
  for (const uuid of msg.dataDiskOfferingUuids ?? []) {
    const o = await diskOffering(app, uuid, 'dataDiskOfferingUuids');
    dataDisks.push({ size: o.diskSize, diskOfferingUuid: o.uuid });
  }

  const l3Uuids = msg.l3NetworkUuids;
  const l3s = await app.remembered(`L3Network:${l3Uuids.join(',')}`, () => db.select().from(l3Networks).where(inArray(l3Networks.uuid, l3Uuids)));
  for (const uuid of l3Uuids) {
    const l3 = l3s.find((x) => x.uuid === uuid);
    if (!l3) throw notFound('L3NetworkVO', uuid, 'l3NetworkUuids');
    if (l3.state !== 'Enabled') throw argErr(`L3 network[uuid:${uuid}] is ${l3.state}; only Enabled L3 networks can be used`);
    if (l3.system) throw argErr(`L3 network[uuid:${uuid}] is a system network; user VMs cannot use it`);
  }
  let defaultL3NetworkUuid = msg.defaultL3NetworkUuid;
  if (defaultL3NetworkUuid && !l3Uuids.includes(defaultL3NetworkUuid)) {
    throw argErr(`defaultL3NetworkUuid[${defaultL3NetworkUuid}] is not in l3NetworkUuids${JSON.stringify(l3Uuids)}`);
  }
  if (!defaultL3NetworkUuid) {
    if (l3Uuids.length > 1) throw argErr('defaultL3NetworkUuid is mandatory when the VM has more than one L3 network');
    defaultL3NetworkUuid = l3Uuids[0];
  }
  const zoneUuids = [...new Set(l3s.map((l) => l.zoneUuid))];
  if (zoneUuids.length > 1) throw argErr(`the L3 networks ${JSON.stringify(l3Uuids)} are in different zones`);
  const zoneUuid = zoneUuids[0];

  const placement = await checkPlacement(app, msg, zoneUuid);
  // `staticIp::<l3>::<ip>` system tags (checked with the other tags, core/tags.ts) fix the NICs' addresses.
  const staticIps = staticIpsOf(app.tags, msg.systemTags);
  return {
    name: msg.name,
    description: msg.description,
    type: 'UserVm',
    cpuNum,
    memorySize,
    cpuSpeed,
    instanceOfferingUuid: msg.instanceOfferingUuid,
    allocatorStrategy,
    image,
    rootDiskSize,
    rootDiskOfferingUuid,
    dataDisks,
    nics: l3Uuids.map((l3NetworkUuid) => ({ l3NetworkUuid, staticIp: staticIps.get(l3NetworkUuid) })),
    defaultL3NetworkUuid,
    zoneUuid,
    placement,
    strategy: msg.strategy ?? 'InstantStart',
    uuid: msg.resourceUuid,
  };
}

async function diskOffering(app: DomainContext, uuid: string, field: string) {
  const [o] = await app.db.select().from(diskOfferings).where(eq(diskOfferings.uuid, uuid));
  if (!o) throw notFound('DiskOfferingVO', uuid, field);
  if (o.state !== 'Enabled') throw argErr(`disk offering[uuid:${uuid}] is ${o.state}; only Enabled disk offerings can be used`);
  return o;
}

async function checkPlacement(app: DomainContext, msg: CreateVmInstanceParams, zoneUuid: string): Promise<Placement> {
  const db = app.db;
  if (msg.zoneUuid) {
    const [z] = await db.select().from(zones).where(eq(zones.uuid, msg.zoneUuid));
    if (!z) throw notFound('ZoneVO', msg.zoneUuid, 'zoneUuid');
    if (z.state !== 'Enabled') throw argErr(`zone[uuid:${z.uuid}] is ${z.state}`);
    if (z.uuid !== zoneUuid) throw argErr(`the L3 networks are in zone[uuid:${zoneUuid}], not in zone[uuid:${z.uuid}]`);
  }
  if (msg.clusterUuid) {
    const [c] = await db.select().from(clusters).where(eq(clusters.uuid, msg.clusterUuid));
    if (!c) throw notFound('ClusterVO', msg.clusterUuid, 'clusterUuid');
    if (c.state !== 'Enabled') throw argErr(`cluster[uuid:${c.uuid}] is ${c.state}`);
  }
  if (msg.hostUuid) {
    const [h] = await db.select().from(hosts).where(eq(hosts.uuid, msg.hostUuid));
    if (!h) throw notFound('HostVO', msg.hostUuid, 'hostUuid');
    if (h.state !== 'Enabled') throw argErr(`host[uuid:${h.uuid}] is ${h.state}`);
    if (h.status !== 'Connected') throw err('HOST.1010', `host[uuid:${h.uuid}] is ${h.status}, not Connected`);
  }
  return {
    zoneUuid,
    clusterUuid: msg.clusterUuid,
    hostUuid: msg.hostUuid,
    primaryStorageUuidForRootVolume: msg.primaryStorageUuidForRootVolume,
  };
}

interface CreateData extends StartData {
  spec: VmCreateSpec;
}

/**
 * Runs the create flow; returns the new VM's row as the flow left it. Steps: 'reserve' writes the VM and volume
 * rows, reserves a host's CPU/memory (and usually primary storage) and takes the NICs' IPs, all or nothing; then the
 * placing steps (primary storage unless reserved already, volumes on the host, network services, start, record).
 * Any later failure rolls the reservation back in one transaction.
 */
/** Creates a VM; returns its rows as the flow last wrote them (the VM, its NICs and volumes). */
export async function createVmRows(app: DomainContext, svc: VmService, spec: VmCreateSpec): Promise<{ vm: VmRow; nics: NicRow[]; volumes: VolumeRow[] }> {
  const steps: FlowStep<CreateData>[] = [
    {
      name: 'reserve',
      async run(d) {
        await reserve(app, d);
        if (d.previousState) svc.emitState(d.vmUuid, d.previousState, 'Starting', null);
      },
      async rollback(d) {
        const nics = d.nics ?? [];
        await app.db.transaction(async (tx) => {
          if (d.host) await app.use('hosts').releaseCapacity(tx, d.host.uuid, d.vm!.cpuNum, d.vm!.memorySize);
          // Primary storage the one-statement reservation took (a separate 'allocate-primary-storage' step gives
          // back its own, and has emptied the list by now).
          for (const r of d.psReserved) await app.use('primaryStorage').release(tx, r.psUuid, r.bytes);
          for (const nic of nics) await deleteNic(app, nic, tx);
          await tx.delete(volumes).where(eq(volumes.vmInstanceUuid, d.vmUuid));
          await tx.delete(vmNics).where(eq(vmNics.vmInstanceUuid, d.vmUuid));
          await tx.delete(vmInstances).where(eq(vmInstances.uuid, d.vmUuid));
        });
        d.psReserved = [];
        if (d.previousState) svc.emitState(d.vmUuid, 'Starting', d.previousState, null);
      },
    },
  ];
  if (spec.strategy !== 'JustCreate') steps.push(...(svc.placeSteps() as FlowStep<CreateData>[]));
  const data: CreateData = {
    vmUuid: spec.uuid ?? newUuid(),
    spec,
    placement: spec.placement,
    startOnHypervisor: spec.strategy === 'InstantStart',
    psReserved: [],
    instantiated: [],
  };
  // Holding the VM's lock from its first row on: a destroy racing the create waits for it to finish or roll back.
  await app.locks.withLock(vmLockKey(data.vmUuid), () => runFlow('create-vm', steps, data));
  return { vm: data.vm!, nics: data.nics ?? [], volumes: data.volumes ?? [] };
}

/** Runs the create flow; returns the new VM's uuid. */
export async function createVm(app: DomainContext, svc: VmService, spec: VmCreateSpec): Promise<string> {
  return (await createVmRows(app, svc, spec)).vm.uuid;
}

/** The rows 'reserve' writes and the host it needs, from the spec. */
function planOf(d: CreateData) {
  const { spec } = d;
  const rootUuid = newUuid();
  const format = spec.image.format === 'iso' ? 'qcow2' : spec.image.format;
  const vm: typeof vmInstances.$inferInsert = {
    uuid: d.vmUuid,
    name: spec.name,
    description: spec.description ?? null,
    zoneUuid: spec.zoneUuid,
    imageUuid: spec.image.uuid,
    instanceOfferingUuid: spec.instanceOfferingUuid ?? null,
    rootVolumeUuid: rootUuid,
    platform: spec.image.platform,
    architecture: spec.image.architecture,
    guestOsType: spec.image.guestOsType,
    defaultL3NetworkUuid: spec.defaultL3NetworkUuid ?? null,
    type: spec.type,
    memorySize: spec.memorySize,
    cpuNum: spec.cpuNum,
    cpuSpeed: spec.cpuSpeed,
    allocatorStrategy: spec.allocatorStrategy,
    // Created → Starting happens with the reservation (the event is emitted once it has committed).
    state: spec.strategy === 'InstantStart' ? 'Starting' : 'Created',
  };
  if (spec.appliance) Object.assign(vm, spec.appliance);
  const vols: Array<typeof volumes.$inferInsert> = [
    {
      uuid: rootUuid,
      name: `ROOT-for-${spec.name}`,
      description: `Root volume for VM[uuid:${d.vmUuid}]`,
      vmInstanceUuid: d.vmUuid,
      diskOfferingUuid: spec.rootDiskOfferingUuid ?? null,
      rootImageUuid: spec.image.uuid,
      type: 'Root',
      format,
      size: spec.rootDiskSize,
      deviceId: 0,
      status: 'NotInstantiated',
    },
    ...spec.dataDisks.map((disk, i) => ({
      uuid: newUuid(),
      name: `DATA-for-${spec.name}`,
      description: `DataVolume-${i + 1} for VM[uuid:${d.vmUuid}]`,
      vmInstanceUuid: d.vmUuid,
      diskOfferingUuid: disk.diskOfferingUuid,
      type: 'Data',
      format: 'qcow2',
      size: disk.size,
      deviceId: i + 1,
      status: 'NotInstantiated',
    })),
  ];
  const host: HostRequirement | undefined =
    spec.strategy === 'JustCreate'
      ? undefined
      : {
          vmUuid: d.vmUuid,
          cpuNum: spec.cpuNum,
          memorySize: spec.memorySize,
          l3NetworkUuids: [...new Set(spec.nics.map((n) => n.l3NetworkUuid))],
          imageUuid: spec.image.uuid,
          zoneUuid: d.placement.zoneUuid ?? spec.zoneUuid ?? undefined,
          clusterUuid: d.placement.clusterUuid,
          hostUuid: d.placement.hostUuid,
          primaryStorageUuids: [],
          newVolumeBytes: vols.reduce((sum, v) => sum + (v.size ?? 0), 0),
          strategy: spec.allocatorStrategy,
        };
  return { vm, vols, host, usedFor: spec.type === 'ApplianceVm' ? ('ApplianceVm' as const) : ('UserVm' as const) };
}
type Plan = ReturnType<typeof planOf>;
interface Reserved {
  vm: VmRow;
  vols: VolumeRow[];
  nics: NicRow[];
  host?: HostRow;
}

/**
 * The VM and volume rows, the host reservation and the NICs (IP + row), all or nothing. Usually one statement
 * (reserveInOneStatement, primary storage included); when that cannot complete (no host or storage on the fast
 * path, an address or MAC taken meanwhile, several NICs), one transaction with the full host pass, the IP
 * allocator's retries and its explanations, and primary storage in the next step's own statement (its row is shared
 * by every creation: no transaction holds it across round trips). The flow's data gets the rows once committed.
 */
async function reserve(app: DomainContext, d: CreateData): Promise<void> {
  const plan = planOf(d);
  const out =
    (plan.host && d.spec.nics.length === 1 && !d.spec.nics[0].staticIp ? await reserveInOneStatement(app, d, plan, plan.host) : undefined) ??
    (await reserveInTransaction(app, d, plan));
  d.vm = out.vm;
  d.volumes = out.vols;
  d.nics = out.nics;
  d.host = out.host;
  if (d.spec.strategy === 'InstantStart') d.previousState = 'Created';
}

async function reserveInTransaction(app: DomainContext, d: CreateData, plan: Plan): Promise<Reserved> {
  return app.db.transaction(async (tx) => {
    // Concurrent creations skip each other's host rows (SKIP LOCKED) on the fast path. The VM row names the host
    // it holds capacity on from the start (reconciliation recomputes host capacity from these rows).
    const host = plan.host ? await allocateHost(app, plan.host, tx) : undefined;
    const [vm] = await tx
      .insert(vmInstances)
      .values({ ...plan.vm, hostUuid: host?.uuid ?? null })
      .returning();
    const vols = await tx.insert(volumes).values(plan.vols).returning();
    const nics: NicRow[] = [];
    for (const [deviceId, n] of d.spec.nics.entries()) {
      nics.push(
        await allocateNic(
          app,
          vm,
          {
            l3NetworkUuid: n.l3NetworkUuid,
            deviceId,
            metaData: n.metaData,
            staticIp: n.staticIp,
            usedFor: plan.usedFor,
            hypervisorType: host ? host.hypervisorType : vm.hypervisorType,
          },
          tx,
        ),
      );
    }
    return { vm, vols, nics, host };
  });
}

/**
 * The common case as one autocommitted statement: data-modifying CTEs reserve the first host of the allocator's
 * fast path and primary storage in its cluster, insert the VM and its volumes, take a free address (picked in the
 * statement as the random strategy does; try-locked, ON CONFLICT DO NOTHING) and insert the NIC (ON CONFLICT on the
 * MAC DO NOTHING). No row stays locked across a round trip. When any part came back empty, a division by zero in the
 * same statement undoes all of it, and the caller takes the transaction path. Its commit does not wait for the disk
 * (see the statement's last column).
 */
async function reserveInOneStatement(app: DomainContext, d: CreateData, plan: Plan, req: HostRequirement): Promise<Reserved | undefined> {
  const nic = d.spec.nics[0];
  type Json = Record<string, unknown>;
  let row: { host: Json; ps: Json; vm: Json; vols: Json[]; nics: Json[] };
  try {
    [row] = await reservations.rows<typeof row>(app.db, 'reserve-vm', (bind) => {
      // Every value is bound first; the SQL is built only when this shape has no text yet (db/perf/template.ts).
      const nicUuid = newUuid();
      const ip = bindFreeIpInsert(newUuid(), nic.l3NetworkUuid, { usedFor: plan.usedFor, vmNicUuid: nicUuid }, within(bind, 'ip'));
      const psReq = { clusterUuid: sql`(SELECT cluster_uuid FROM h)`, bytes: req.newVolumeBytes, required: d.placement.primaryStorageUuidForRootVolume };
      const pick = bindPrimaryStoragePick(psReq, within(bind, 'ps'));
      const ps = bindPrimaryStorageReservation(psReq, within(bind, 'ps'), sql`(SELECT uuid FROM pspick)`);
      const host = bindHostReservation(req, within(bind, 'host'));
      const vm = bindAll(bind, 'vm', plan.vm);
      const vols = plan.vols.map((v, i) => bindAll(bind, `vol.${i}`, v));
      const nicValues = {
        uuid: bind('nic.uuid', nicUuid),
        l3NetworkUuid: bind('nic.l3NetworkUuid', nic.l3NetworkUuid),
        mac: bind('nic.mac', app.use('networks').generateMac(0)),
        metaData: bind('nic.metaData', nic.metaData ?? null),
      };
      return () => sql`WITH h AS (${host(app.db).getSQL()}),
        pspick AS MATERIALIZED (${pick(app.db).getSQL()}),
        ps AS (${ps(app.db).getSQL()}),
        vm AS (${app.db
          .insert(vmInstances)
          .values({ ...vm, hostUuid: sql`(SELECT uuid FROM h)` })
          .returning()
          .getSQL()}),
        vol AS (${app.db
          .insert(volumes)
          .values(vols.map((v) => ({ ...v, primaryStorageUuid: sql`(SELECT uuid FROM pspick)` })))
          .returning()
          .getSQL()}),
        ip AS (${ip()}),
        nic AS (
          INSERT INTO ${vmNics} (uuid, vm_instance_uuid, l3_network_uuid, used_ip_uuid, ip, netmask, gateway, mac, meta_data, device_id, internal_name, hypervisor_type)
          SELECT ${nicValues.uuid}, vm.uuid, ${nicValues.l3NetworkUuid}, ip.uuid, ip.ip, ip.netmask, ip.gateway,
                 ${nicValues.mac}, ${nicValues.metaData}, 0, 'vnic' || vm.internal_id || '.0', h.hypervisor_type
            FROM vm, ip, h
          ON CONFLICT (mac) DO NOTHING RETURNING *
        )
        SELECT (SELECT row_to_json(h) FROM h) AS host, (SELECT row_to_json(vm) FROM vm) AS vm,
               (SELECT json_agg(vol ORDER BY vol.device_id) FROM vol) AS vols, (SELECT json_agg(nic) FROM nic) AS nics,
               -- Last: the primary storage row is the one every creation updates; its lock is held from here to the
               -- commit, so the rest of the statement runs before it is taken (CTEs run when first read). The volume
               -- rows name the storage picked (unlocked) in pspick, which this reservation then takes or fails.
               (SELECT row_to_json(ps) FROM ps) AS ps,
               1 / ((SELECT count(*) FROM h) * (SELECT count(*) FROM nic) * (SELECT count(*) FROM ps))::int AS complete,
               -- Committed without waiting for the WAL flush (this transaction only): the storage row's lock is then
               -- released at once instead of after a disk flush, which serialized every creation. Nothing is lost that
               -- anyone was told: a reply follows a synchronous commit (the VM's record, the job's end), and a flush
               -- covers every commit before it. A crash before that loses a creation no one was told about; a VM an
               -- agent started meanwhile is then unknown to the database, and reconciliation destroys it.
               set_config('synchronous_commit', 'off', true) AS async_commit`;
    });
  } catch (e) {
    if (isDivisionByZero(e)) return undefined;
    throw e;
  }
  const storage = decodeRow(primaryStorage, row.ps);
  const vols = row.vols.map((v) => decodeRow(volumes, v));
  for (const v of vols) {
    v.primaryStorageUuid = storage.uuid;
    v.installPath = await installPathOf(app, storage, v.type === 'Root' ? 'rootVolumes' : 'dataVolumes', v.uuid);
  }
  d.psReserved.push({ psUuid: storage.uuid, bytes: req.newVolumeBytes });
  return { host: decodeRow(hosts, row.host), vm: decodeRow(vmInstances, row.vm), vols, nics: row.nics.map((n) => decodeRow(vmNics, n)) };
}

/** The reservation's texts, rendered once per shape (db/perf/template.ts): its rendering was the flow's largest CPU cost. */
const reservations = new StatementTemplates();

function isDivisionByZero(e: unknown): boolean {
  for (let c = e as { code?: string; cause?: unknown } | undefined; c; c = c.cause as typeof c) if (c.code === '22012') return true;
  return false;
}
