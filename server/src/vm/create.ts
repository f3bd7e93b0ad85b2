// Creating a VM: the CreateVmInstance checks (upstream's VmInstanceApiInterceptor, answered before the 202) turn a
// message into a spec; the create flow persists the VM, its volumes and NICs, then (unless JustCreate) runs the
// start steps. Any failing step rolls everything back: host and storage capacity, IPs, NICs, volumes, the VM row.
import { vmLockKey } from './service.js';
import { eq, inArray } from 'drizzle-orm';
import type { App } from '../app.js';
import { argErr, err, notFound } from '../core/errors.js';
import { runFlow, type FlowStep } from '../core/flow.js';
import type { Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { clusters, diskOfferings, hosts, images, instanceOfferings, l3Networks, vmInstances, vmNics, volumes, zones } from '../db/schema/index.js';
import { DEFAULT_ALLOCATOR_STRATEGY } from './allocation/host-allocator.js';
import type { NicRow } from './inventory.js';
import { allocateNic, deleteNic } from './nics.js';
import type { VmService } from './service.js';
import type { Placement, StartData } from './start-flow.js';

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
  nics: Array<{ l3NetworkUuid: string; metaData?: string }>;
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
export async function specFromMessage(app: App, msg: CreateVmInstanceParams): Promise<VmCreateSpec> {
  const db = app.db;
  let cpuNum = msg.cpuNum;
  let memorySize = msg.memorySize;
  let cpuSpeed = 0;
  let allocatorStrategy = DEFAULT_ALLOCATOR_STRATEGY;
  if (msg.instanceOfferingUuid) {
    const [o] = await db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, msg.instanceOfferingUuid));
    if (!o || o.type !== 'UserVm') throw notFound('InstanceOfferingVO', msg.instanceOfferingUuid, 'instanceOfferingUuid');
    if (o.state !== 'Enabled') throw argErr(`instance offering[uuid:${o.uuid}] is ${o.state}, it cannot be used to create VMs`);
    cpuNum = o.cpuNum;
    memorySize = o.memorySize;
    cpuSpeed = o.cpuSpeed;
    allocatorStrategy = o.allocatorStrategy ?? DEFAULT_ALLOCATOR_STRATEGY;
  }
  if (!cpuNum || !memorySize) throw argErr('Missing CPU/memory settings: give instanceOfferingUuid, or cpuNum and memorySize');
  if (msg.resourceUuid) {
    const [used] = await db.select({ uuid: vmInstances.uuid }).from(vmInstances).where(eq(vmInstances.uuid, msg.resourceUuid));
    if (used) throw argErr(`resourceUuid[${msg.resourceUuid}] is already used`);
  }

  const [image] = await db.select().from(images).where(eq(images.uuid, msg.imageUuid));
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
  const l3s = await db.select().from(l3Networks).where(inArray(l3Networks.uuid, l3Uuids));
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
    nics: l3Uuids.map((l3NetworkUuid) => ({ l3NetworkUuid })),
    defaultL3NetworkUuid,
    zoneUuid,
    placement,
    strategy: msg.strategy ?? 'InstantStart',
    uuid: msg.resourceUuid,
  };
}

async function diskOffering(app: App, uuid: string, field: string) {
  const [o] = await app.db.select().from(diskOfferings).where(eq(diskOfferings.uuid, uuid));
  if (!o) throw notFound('DiskOfferingVO', uuid, field);
  if (o.state !== 'Enabled') throw argErr(`disk offering[uuid:${uuid}] is ${o.state}; only Enabled disk offerings can be used`);
  return o;
}

async function checkPlacement(app: App, msg: CreateVmInstanceParams, zoneUuid: string): Promise<Placement> {
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
  nicRows: NicRow[];
}

/** Runs the create flow; returns the new VM's uuid. */
export async function createVm(app: App, svc: VmService, spec: VmCreateSpec): Promise<string> {
  const steps: FlowStep<CreateData>[] = [
    {
      name: 'persist',
      async run(d) {
        await persist(app, d);
      },
      async rollback(d) {
        await app.db.transaction(async (tx) => {
          await tx.delete(volumes).where(eq(volumes.vmInstanceUuid, d.vmUuid));
          await tx.delete(vmNics).where(eq(vmNics.vmInstanceUuid, d.vmUuid));
          await tx.delete(vmInstances).where(eq(vmInstances.uuid, d.vmUuid));
        });
      },
    },
    {
      name: 'allocate-nics',
      async run(d) {
        // The row persist just wrote (RETURNING): no need to read it again.
        const vm = d.vm!;
        for (const [deviceId, n] of d.spec.nics.entries()) {
          d.nicRows.push(
            await allocateNic(app, vm, {
              l3NetworkUuid: n.l3NetworkUuid,
              deviceId,
              metaData: n.metaData,
              usedFor: d.spec.type === 'ApplianceVm' ? 'ApplianceVm' : 'UserVm',
            }),
          );
        }
        // The start steps use these rows instead of reading them back ('load').
        d.nics = [...d.nicRows];
      },
      async rollback(d) {
        for (const nic of d.nicRows) await deleteNic(app, nic);
      },
    },
  ];
  if (spec.strategy !== 'JustCreate') steps.push(...(svc.startFlowSteps(spec.strategy === 'InstantStart') as FlowStep<CreateData>[]));
  const data: CreateData = {
    vmUuid: spec.uuid ?? newUuid(),
    spec,
    nicRows: [],
    placement: spec.placement,
    startOnHypervisor: spec.strategy === 'InstantStart',
    psReserved: [],
    instantiated: [],
  };
  // Holding the VM's lock from its first row on: a destroy racing the create waits for it to finish or roll back.
  await app.locks.withLock(vmLockKey(data.vmUuid), () => runFlow('create-vm', steps, data));
  return data.vmUuid;
}

async function persist(app: App, d: CreateData): Promise<void> {
  const { spec } = d;
  const rootUuid = newUuid();
  const format = spec.image.format === 'iso' ? 'qcow2' : spec.image.format;
  await app.db.transaction(async (tx) => {
    const values: typeof vmInstances.$inferInsert = {
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
      state: 'Created',
    };
    if (spec.appliance) Object.assign(values, spec.appliance);
    const [vm] = await tx.insert(vmInstances).values(values).returning();
    d.volumes = await tx.insert(volumes).values([
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
    ]).returning();
    d.vm = vm;
  });
}

