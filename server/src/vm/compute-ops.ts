// VM management beyond the lifecycle (openapi/domains/vm-compute.yaml), as 1.1's VmInstanceBase does it:
// UpdateVmInstance, ChangeInstanceOffering (a running VM's change is pending until its next start), the ISO in the
// CD-ROM drive (`iso::` tag, `/vm/iso/attach|detach` on a running VM), the boot order (`bootOrder::` tag), the
// migration candidates (MigrateVm's allocator as a dry run) and the console address (`/vm/getvncport`).
// The tags also shape every start (`bootOptionsOf`, used by the start flow).
import { and, eq, inArray, like, or, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { argErr, notFound, opErr, toApiError } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { TagService } from '../core/tags.js';
import type { Tx } from '../db/index.js';
import { backupStorageZoneRefs, imageBackupStorageRefs, images, instanceOfferings, systemTags, vmInstances, vmNics } from '../db/schema/index.js';
import { candidatesFor, migrationRequirement } from './allocation/host-allocator.js';
import { hostCall } from './hypervisor.js';
import type { VmRow, VolumeRow } from './inventory.js';
import type { VmOps } from './ops.js';
import { notInStateErr, requireState } from './states.js';

const VM = 'VmInstanceVO';
export const ISO = 'iso::{iso}';
export const BOOT_ORDER = 'bootOrder::{bootOrder}';
export const PENDING_CAPACITY_CHANGE = 'pendingCapacityChange::cpuNum::{cpuNum}::cpuSpeed::{cpuSpeed}::memory::{memory}';
/** 1.1's VmBootDevice, and what the kvm agent calls each (libvirt's `<boot dev=…>`). */
const BOOT_DEVICES: Record<string, string> = { HardDisk: 'hd', CdRom: 'cdrom' };

/** The VM's system tags of a format (by its literal prefix). */
async function tagsOf(db: Tx, vmUuid: string, format: string): Promise<Array<typeof systemTags.$inferSelect>> {
  const prefix = format.slice(0, format.indexOf('::') + 2);
  return db
    .select()
    .from(systemTags)
    .where(and(eq(systemTags.resourceUuid, vmUuid), like(systemTags.tag, `${prefix}%`)));
}

/** Writes `tag` as the VM's only inherent tag of its format (upstream's recreateInherentTag). */
async function recreateTag(app: DomainContext, tx: Tx, vmUuid: string, format: string, tag: string): Promise<void> {
  await deleteTag(tx, vmUuid, format);
  await app.tags.create(tx, { uuid: vmUuid, type: VM }, { systemTags: [tag], inherent: true });
}

async function deleteTag(tx: Tx, vmUuid: string, format: string): Promise<void> {
  const prefix = format.slice(0, format.indexOf('::') + 2);
  await tx.delete(systemTags).where(and(eq(systemTags.resourceUuid, vmUuid), like(systemTags.tag, `${prefix}%`)));
}

/** The tokens of `tag` when it has `format` (`{token}` parts), else undefined. */
function tokensOf(format: string, tag: string): Record<string, string> | undefined {
  const names: string[] = [];
  const body = format
    .split(/(\{[A-Za-z0-9_]+\})/)
    .map((part) => {
      const m = /^\{([A-Za-z0-9_]+)\}$/.exec(part);
      if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(m[1]);
      return '(.+?)';
    })
    .join('');
  const m = new RegExp(`^${body}$`, 's').exec(tag);
  return m ? Object.fromEntries(names.map((n, i) => [n, m[i + 1]])) : undefined;
}

/** The ISO attached to a VM (its `iso::` tag), if any. */
export async function attachedIsoOf(db: Tx, vmUuid: string): Promise<string | undefined> {
  const [t] = await tagsOf(db, vmUuid, ISO);
  return t ? tokensOf(ISO, t.tag)?.iso : undefined;
}

/** The boot order of a VM: its `bootOrder::` tag, else [HardDisk]. */
export async function bootOrderOf(db: Tx, vmUuid: string): Promise<string[]> {
  const [t] = await tagsOf(db, vmUuid, BOOT_ORDER);
  const order = t ? tokensOf(BOOT_ORDER, t.tag)?.bootOrder : undefined;
  return order ? order.split(',') : ['HardDisk'];
}

/** Where the ISO goes on the host: the image cache of the root volume's primary storage (`…/imagecache/iso/<uuid>/`). */
function isoPathOn(root: Pick<VolumeRow, 'installPath'> | undefined, isoUuid: string): string {
  const installPath = root?.installPath ?? '';
  const i = installPath.indexOf('/rootVolumes/');
  const base = i < 0 ? '/var/lib/zstack/imagecache' : `${installPath.slice(0, i)}/imagecache`;
  return `${base}/iso/${isoUuid}/${isoUuid}.iso`;
}

/** The IsoTO of an ISO image for a VM (its cache path on the host, its backup storage copy). */
async function isoTO(db: Tx, isoUuid: string, root: Pick<VolumeRow, 'installPath'> | undefined) {
  const [ref] = await db
    .select({ installPath: imageBackupStorageRefs.installPath })
    .from(imageBackupStorageRefs)
    .where(and(eq(imageBackupStorageRefs.imageUuid, isoUuid), eq(imageBackupStorageRefs.status, 'Ready')));
  return { imageUuid: isoUuid, path: isoPathOn(root, isoUuid), ...(ref?.installPath ? { backupStorageInstallPath: ref.installPath } : {}) };
}

/** What the VM's tags add to its /vm/start command: boot devices in order and the ISO to boot with (one read). */
export async function bootOptionsOf(
  app: DomainContext,
  vm: Pick<VmRow, 'uuid'>,
  root: VolumeRow,
): Promise<{ bootDev?: string[]; bootIso?: Awaited<ReturnType<typeof isoTO>> }> {
  const db = app.db;
  // Most clouds have no VM with a boot order or an ISO: then a start reads no tags (remembered until a tag is written).
  const anyBootTag = await app.remembered('anyBootTag', async () => {
    const [hit] = await db
      .select({ one: sql`1` })
      .from(systemTags)
      .where(or(like(systemTags.tag, `${BOOT_ORDER.slice(0, BOOT_ORDER.indexOf('::') + 2)}%`), like(systemTags.tag, `${ISO.slice(0, ISO.indexOf('::') + 2)}%`)))
      .limit(1);
    return Boolean(hit);
  });
  if (!anyBootTag) return {};
  const rows = await db
    .select({ tag: systemTags.tag })
    .from(systemTags)
    .where(and(eq(systemTags.resourceUuid, vm.uuid), inArray(systemTags.resourceType, [VM, 'ApplianceVmVO'])));
  const out: { bootDev?: string[]; bootIso?: Awaited<ReturnType<typeof isoTO>> } = {};
  for (const { tag } of rows) {
    const order = tokensOf(BOOT_ORDER, tag)?.bootOrder;
    if (order) out.bootDev = order.split(',').map((d) => BOOT_DEVICES[d] ?? 'hd');
    const iso = tokensOf(ISO, tag)?.iso;
    if (iso) {
      const to = await isoTO(db, iso, root);
      // An ISO deleted since it was attached: the VM starts without it (as 1.1 skips a missing ISO); the tag stays
      // so DetachIsoFromVmInstance still works.
      if (to.backupStorageInstallPath) out.bootIso = to;
      else console.warn(`[vm] VM[uuid:${vm.uuid}] starts without its ISO[uuid:${iso}]: it is on no backup storage any more`);
    }
  }
  return out;
}

/**
 * Upstream's applyPendingCapacityChangeIfNeed, at a start: the offering's figures a ChangeInstanceOffering left
 * pending become the VM's (before the start reserves them on a host). Returns the row as it is now.
 */
export async function applyPendingCapacityChange(app: DomainContext, vm: VmRow): Promise<VmRow> {
  const [t] = await tagsOf(app.db, vm.uuid, PENDING_CAPACITY_CHANGE);
  if (!t) return vm;
  const tokens = tokensOf(PENDING_CAPACITY_CHANGE, t.tag);
  return app.db.transaction(async (tx) => {
    await tx.delete(systemTags).where(eq(systemTags.uuid, t.uuid));
    if (!tokens) return vm;
    const [row] = await tx
      .update(vmInstances)
      .set({ cpuNum: Number(tokens.cpuNum), cpuSpeed: Number(tokens.cpuSpeed), memorySize: Number(tokens.memory), lastOpDate: new Date() })
      .where(eq(vmInstances.uuid, vm.uuid))
      .returning();
    return row ?? vm;
  });
}

export function registerComputeOps(app: DomainContext<'hosts'>, vms: VmOps): void {
  const { db } = app;
  // The tags this file owns (so `systemTags` naming them pass the tag check; not settable at creation otherwise).
  for (const format of [ISO, BOOT_ORDER, PENDING_CAPACITY_CHANGE]) app.tags.define({ resourceType: VM, format });

  const reply = async (uuid: string) => ({ inventory: (await vms.inventory(uuid)) as any });

  const requireIso = async (vm: VmRow, isoUuid: string) => {
    const [image] = await db.select().from(images).where(eq(images.uuid, isoUuid));
    if (!image) throw notFound('ImageVO', isoUuid, 'isoUuid');
    if (image.mediaType !== 'ISO') throw argErr(`field[isoUuid]: image[uuid:${isoUuid}] is a ${image.mediaType}, not an ISO`);
    if (image.state !== 'Enabled' || image.status !== 'Ready') {
      throw opErr(`image[uuid:${isoUuid}] is ${image.state} and ${image.status}; an ISO must be Enabled and Ready to be attached`);
    }
    if (vm.zoneUuid) {
      const [ref] = await db
        .select({ bs: imageBackupStorageRefs.backupStorageUuid })
        .from(imageBackupStorageRefs)
        .innerJoin(backupStorageZoneRefs, eq(backupStorageZoneRefs.backupStorageUuid, imageBackupStorageRefs.backupStorageUuid))
        .where(and(eq(imageBackupStorageRefs.imageUuid, isoUuid), eq(imageBackupStorageRefs.status, 'Ready'), eq(backupStorageZoneRefs.zoneUuid, vm.zoneUuid)));
      if (!ref) throw opErr(`ISO[uuid:${isoUuid}] is on no backup storage of the VM's zone[uuid:${vm.zoneUuid}]`);
    }
  };
  const refuseSecondIso = async (vm: VmRow) => {
    const current = await attachedIsoOf(db, vm.uuid);
    if (current) throw opErr(`VM[uuid:${vm.uuid}] already has an ISO[uuid:${current}] attached`);
  };
  const rootOf = async (vm: VmRow) => (await vms.volumesOf(vm.uuid)).find((v) => v.type === 'Root');

  const requireOffering = async (uuid: string) => {
    const [o] = await db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, uuid));
    if (!o) throw notFound('InstanceOfferingVO', uuid, 'instanceOfferingUuid');
    if (o.type !== 'UserVm') throw argErr(`field[instanceOfferingUuid]: instance offering[uuid:${uuid}] is of type ${o.type}, not UserVm`);
    if (o.state !== 'Enabled') throw opErr(`instance offering[uuid:${uuid}] is ${o.state}`);
    return o;
  };

  const checkUpdate = async (vm: VmRow, msg: { state?: string; defaultL3NetworkUuid?: string }) => {
    if (msg.state !== undefined && msg.state !== vm.state) {
      if (!['Running', 'Stopped'].includes(vm.state)) throw notInStateErr(vm.state, 'UpdateVmInstance', ['Running', 'Stopped']);
      // A Running VM is on a host (its capacity reserved there): only StartVmInstance can choose one.
      if (msg.state === 'Running') throw opErr(`VM[uuid:${vm.uuid}] is Stopped: start it with StartVmInstance, which places it on a host`);
    }
    if (msg.defaultL3NetworkUuid !== undefined) {
      const [nic] = await db
        .select({ uuid: vmNics.uuid })
        .from(vmNics)
        .where(and(eq(vmNics.vmInstanceUuid, vm.uuid), eq(vmNics.l3NetworkUuid, msg.defaultL3NetworkUuid)));
      if (!nic) throw argErr(`field[defaultL3NetworkUuid]: the VM[uuid:${vm.uuid}] has no NIC on L3 network[uuid:${msg.defaultL3NetworkUuid}]`);
    }
  };

  app.addHandlers(
    defineHandlers({
      UpdateVmInstance: {
        check: async (msg) => checkUpdate(await vms.require(msg.uuid), msg),
        async run(msg) {
          await vms.withVm(msg.uuid, async (vm) => {
            await checkUpdate(vm, msg);
            const set: Partial<typeof vmInstances.$inferInsert> = {};
            if (msg.name !== undefined) set.name = msg.name;
            if (msg.description !== undefined) set.description = msg.description;
            if (msg.defaultL3NetworkUuid !== undefined) set.defaultL3NetworkUuid = msg.defaultL3NetworkUuid;
            if (msg.platform !== undefined) set.platform = msg.platform;
            if (Object.keys(set).length)
              await db
                .update(vmInstances)
                .set({ ...set, lastOpDate: new Date() })
                .where(eq(vmInstances.uuid, vm.uuid));
            // 1.1 rewrites the recorded state (a correction of what the database believes; nothing is sent to the
            // host). Marking a Running VM Stopped gives its host capacity back, as a stop does; if it does run there,
            // reconciliation finds it again.
            if (msg.state === 'Stopped' && vm.state === 'Running') {
              await db.transaction(async (tx) => {
                if (vm.hostUuid) await app.use('hosts').releaseCapacity(tx, vm.hostUuid, vm.cpuNum, vm.memorySize);
                await vms.setState(vm, 'Stopped', { hostUuid: null, lastHostUuid: vm.hostUuid ?? vm.lastHostUuid }, tx);
              });
            }
          });
          return reply(msg.uuid);
        },
      },
      ChangeInstanceOffering: {
        async check(msg) {
          requireState((await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid')).state, 'ChangeInstanceOffering');
          await requireOffering(msg.instanceOfferingUuid);
        },
        async run(msg) {
          await vms.withVm(
            msg.vmInstanceUuid,
            async (vm) => {
              requireState(vm.state, 'ChangeInstanceOffering');
              const o = await requireOffering(msg.instanceOfferingUuid);
              await db.transaction(async (tx) => {
                if (vm.state === 'Stopped') {
                  // A stopped VM holds no host capacity: the figures change now and are reserved at its next start.
                  await deleteTag(tx, vm.uuid, PENDING_CAPACITY_CHANGE);
                  await tx
                    .update(vmInstances)
                    .set({ instanceOfferingUuid: o.uuid, cpuNum: o.cpuNum, cpuSpeed: o.cpuSpeed, memorySize: o.memorySize, lastOpDate: new Date() })
                    .where(eq(vmInstances.uuid, vm.uuid));
                } else {
                  // Running: the hypervisor keeps what it has until the VM starts again (applyPendingCapacityChange).
                  const tag = TagService.instantiate(PENDING_CAPACITY_CHANGE, {
                    cpuNum: String(o.cpuNum),
                    cpuSpeed: String(o.cpuSpeed),
                    memory: String(o.memorySize),
                  });
                  await recreateTag(app, tx, vm.uuid, PENDING_CAPACITY_CHANGE, tag);
                  await tx.update(vmInstances).set({ instanceOfferingUuid: o.uuid, lastOpDate: new Date() }).where(eq(vmInstances.uuid, vm.uuid));
                }
              });
            },
            'vmInstanceUuid',
          );
          return reply(msg.vmInstanceUuid);
        },
      },
      AttachIsoToVmInstance: {
        async check(msg) {
          const vm = await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid');
          requireState(vm.state, 'AttachIsoToVmInstance');
          await requireIso(vm, msg.isoUuid);
          await refuseSecondIso(vm);
        },
        async run(msg) {
          await vms.withVm(
            msg.vmInstanceUuid,
            async (vm) => {
              requireState(vm.state, 'AttachIsoToVmInstance');
              await requireIso(vm, msg.isoUuid);
              await refuseSecondIso(vm);
              // Running: the drive is filled first; a failure leaves no tag behind (nothing to roll back on the host).
              if (vm.state === 'Running') {
                await hostCall(app, vm.hostUuid!, '/vm/iso/attach', { vmUuid: vm.uuid, iso: await isoTO(db, msg.isoUuid, await rootOf(vm)) });
              }
              await db.transaction((tx) => recreateTag(app, tx, vm.uuid, ISO, TagService.instantiate(ISO, { iso: msg.isoUuid })));
            },
            'vmInstanceUuid',
          );
          return reply(msg.vmInstanceUuid);
        },
      },
      DetachIsoFromVmInstance: {
        check: async (msg) => requireState((await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid')).state, 'DetachIsoFromVmInstance'),
        async run(msg) {
          await vms.withVm(
            msg.vmInstanceUuid,
            async (vm) => {
              requireState(vm.state, 'DetachIsoFromVmInstance');
              const iso = await attachedIsoOf(db, vm.uuid);
              if (!iso) return;
              // The tag stays while the host still has the ISO in the drive (a failed eject can be retried).
              if (vm.state === 'Running') await hostCall(app, vm.hostUuid!, '/vm/iso/detach', { vmUuid: vm.uuid, iso: await isoTO(db, iso, await rootOf(vm)) });
              await deleteTag(db, vm.uuid, ISO);
            },
            'vmInstanceUuid',
          );
          return reply(msg.vmInstanceUuid);
        },
      },
      SetVmBootOrder: {
        async check(msg) {
          const bad = (msg.bootOrder ?? []).find((d) => !BOOT_DEVICES[d]);
          if (bad) throw argErr(`invalid boot device[${bad}] in boot order[${(msg.bootOrder ?? []).join(', ')}]; valid devices are HardDisk, CdRom`);
          await vms.require(msg.uuid);
        },
        async run(msg) {
          await vms.withVm(msg.uuid, async (vm) => {
            if (msg.bootOrder?.length) {
              const tag = TagService.instantiate(BOOT_ORDER, { bootOrder: msg.bootOrder.join(',') });
              await db.transaction((tx) => recreateTag(app, tx, vm.uuid, BOOT_ORDER, tag));
            } else {
              await deleteTag(db, vm.uuid, BOOT_ORDER);
            }
          });
          return reply(msg.uuid);
        },
      },
      GetVmBootOrder: {
        async run(msg) {
          await vms.require(msg.uuid);
          return { order: (await bootOrderOf(db, msg.uuid)) as Array<'HardDisk' | 'CdRom'> };
        },
      },
      GetVmMigrationCandidateHosts: {
        async run(msg) {
          const vm = await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid');
          requireState(vm.state, 'GetVmMigrationCandidateHosts');
          const src = await app.use('hosts').require(vm.hostUuid!);
          const req = migrationRequirement(vm, src, await vms.nicsOf(vm.uuid), await vms.volumesOf(vm.uuid));
          const { candidates } = await candidatesFor(app, req);
          return { inventories: (await app.use('hosts').inventories(candidates)) as any };
        },
      },
      GetVmConsoleAddress: {
        async run(msg) {
          const vm = await vms.require(msg.uuid);
          requireState(vm.state, 'GetVmConsoleAddress');
          const host = await app.use('hosts').requireConnected(vm.hostUuid!);
          const rsp = await hostCall(app, host.uuid, '/vm/getvncport', { vmUuid: vm.uuid }).catch((e) => {
            throw opErr(`cannot get the console address of VM[uuid:${vm.uuid}] from host[uuid:${host.uuid}]`, toApiError(e).error);
          });
          if (!rsp.port) throw opErr(`host[uuid:${host.uuid}] reported no console port for VM[uuid:${vm.uuid}]`);
          return { hostIp: rsp.host ?? host.managementIp, port: rsp.port, protocol: 'vnc' as const };
        },
      },
    }),
  );
}
