// The steps that put a VM on a host (zstack-internals.md §5.4 order): allocate a host → allocate primary storage for
// volumes not yet created → create them on the host → network services (e.g. the virtual router's DHCP) → start on
// the hypervisor → record it Running. Every step that reserves something has a rollback, so a failure anywhere
// (including a later step of the create flow that embeds these) leaves nothing reserved.
import { eq, inArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { currentContext } from '../core/context.js';
import type { FlowStep } from '../core/flow.js';
import { vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { StatementTemplates, type Bind } from '../db/perf/template.js';
import { ADMIN_UUID } from '../identity/index.js';
import { allocateHost } from './allocation/host-allocator.js';
import { allocatePrimaryStorage } from './allocation/primary-storage-allocator.js';
import { opErr, toApiError } from '../core/errors.js';
import { deleteVolumeBits } from './gc.js';
import { createVolumeCmd, hostCall, hostCallOn, nicNetworks, startVmCmd } from './hypervisor.js';
import { bootOptionsOf } from './compute-ops.js';
import type { StartData, VmOps } from './ops.js';
import type { PrimaryStorageRow } from '../storage/index.js';

/** Where a new volume goes on its primary storage (its storage type decides; the caller's account is part of it). */
export const installPathOf = (app: DomainContext, ps: PrimaryStorageRow, kind: 'rootVolumes' | 'dataVolumes', volumeUuid: string) =>
  app.use('primaryStorage').volumeInstallPath(ps, kind, volumeUuid, currentContext()?.session?.accountUuid ?? ADMIN_UUID);

/** Start of an existing VM: read its rows, allocate a host and primary storage, then the steps that place it. */
export function startSteps(app: DomainContext, svc: VmOps): FlowStep<StartData>[] {
  return [
    {
      name: 'load',
      async run(d) {
        // The create flow hands over the rows it has just written; a start of an existing VM reads them.
        if (d.vm && d.nics && d.volumes) return;
        const [vm] = await app.db.select().from(vmInstances).where(eq(vmInstances.uuid, d.vmUuid));
        d.vm = vm;
        d.nics = await app.db.select().from(vmNics).where(eq(vmNics.vmInstanceUuid, vm.uuid));
        d.volumes = await app.db.select().from(volumes).where(eq(volumes.vmInstanceUuid, vm.uuid));
      },
    },
    {
      name: 'allocate-host',
      async run(d) {
        const vm = d.vm!;
        const pending = d.volumes!.filter((v) => v.status === 'NotInstantiated');
        const placed = d.placement.hostUuid || d.placement.clusterUuid || d.placement.zoneUuid;
        const readyStorage = [...new Set(d.volumes!.filter((v) => v.primaryStorageUuid && v.status === 'Ready').map((v) => v.primaryStorageUuid!))];
        // Volumes on a host's own disk (local storage) pin the VM to that host: its last one.
        const pinnedTo = vm.lastHostUuid && (await app.use('primaryStorage').anyHostLocal(readyStorage)) ? vm.lastHostUuid : undefined;
        if (pinnedTo && d.placement.hostUuid && d.placement.hostUuid !== pinnedTo) {
          throw opErr(
            `VM[uuid:${vm.uuid}] has volumes on the local storage of host[uuid:${pinnedTo}]: it can only start there ` +
              '(LocalStorageMigrateVolume moves a volume to another host)',
          );
        }
        // The reservation and the VM row naming its host commit together (capacity is recomputed from such rows).
        d.host = await app.db.transaction(async (tx) => {
          const host = await allocateHost(
            app,
            {
              vmUuid: vm.uuid,
              cpuNum: vm.cpuNum,
              memorySize: vm.memorySize,
              l3NetworkUuids: [...new Set(d.nics!.map((n) => n.l3NetworkUuid))],
              imageUuid: pending.some((v) => v.type === 'Root') ? (vm.imageUuid ?? undefined) : undefined,
              zoneUuid: d.placement.zoneUuid ?? vm.zoneUuid ?? undefined,
              clusterUuid: d.placement.clusterUuid,
              hostUuid: d.placement.hostUuid ?? pinnedTo,
              primaryStorageUuids: readyStorage,
              newVolumeBytes: pending.reduce((s, v) => s + v.size, 0),
              preferredHostUuid: placed ? undefined : (vm.lastHostUuid ?? undefined),
              strategy: vm.allocatorStrategy,
            },
            tx,
          );
          await tx.update(vmInstances).set({ hostUuid: host.uuid }).where(eq(vmInstances.uuid, vm.uuid));
          return host;
        });
        d.vm = { ...vm, hostUuid: d.host.uuid };
      },
      async rollback(d) {
        await app.db.transaction(async (tx) => {
          await app.use('hosts').releaseCapacity(tx, d.host!.uuid, d.vm!.cpuNum, d.vm!.memorySize);
          await tx.update(vmInstances).set({ hostUuid: null }).where(eq(vmInstances.uuid, d.vmUuid));
        });
      },
    },
    ...placeSteps(app, svc),
  ];
}

/**
 * The steps once a host is reserved (shared with the create flow, which reserves the host, the rows and the IPs in
 * one transaction of its own): primary storage for new volumes (its own statement: the storage row is the one
 * every creation updates, so it is never held locked for the length of a transaction), create the new volumes on
 * the host, network services, start on the hypervisor, record the result. The host
 * is the row the allocation reserved on (only Connected hosts qualify there): agent calls do not read it again.
 */
export function placeSteps(app: DomainContext, svc: VmOps): FlowStep<StartData>[] {
  return [
    {
      name: 'allocate-primary-storage',
      // Not when the create flow's one-statement reservation took it already.
      when: (d) => d.volumes!.some((v) => v.status === 'NotInstantiated') && d.psReserved.length === 0,
      async run(d) {
        const pending = d.volumes!.filter((v) => v.status === 'NotInstantiated');
        const bytes = pending.reduce((s, v) => s + v.size, 0);
        // The reservation and the volume rows naming their storage commit together.
        const ps = await app.db.transaction(async (tx) => {
          const picked = await allocatePrimaryStorage(
            app,
            { clusterUuid: d.host!.clusterUuid, bytes, required: d.placement.primaryStorageUuidForRootVolume, purpose: `the volumes of VM[uuid:${d.vmUuid}]` },
            tx,
          );
          await tx
            .update(volumes)
            .set({ primaryStorageUuid: picked.uuid })
            .where(
              inArray(
                volumes.uuid,
                pending.map((v) => v.uuid),
              ),
            );
          return picked;
        });
        d.psReserved.push({ psUuid: ps.uuid, bytes });
        for (const v of pending) {
          v.primaryStorageUuid = ps.uuid;
          v.installPath = await installPathOf(app, ps, v.type === 'Root' ? 'rootVolumes' : 'dataVolumes', v.uuid);
        }
      },
      async rollback(d) {
        const pending = d.volumes!.filter((v) => v.status === 'NotInstantiated').map((v) => v.uuid);
        await app.db.transaction(async (tx) => {
          for (const r of d.psReserved) await app.use('primaryStorage').release(tx, r.psUuid, r.bytes);
          if (pending.length) await tx.update(volumes).set({ primaryStorageUuid: null }).where(inArray(volumes.uuid, pending));
        });
        d.psReserved = [];
      },
    },
    {
      name: 'instantiate-volumes',
      when: (d) => d.volumes!.some((v) => v.status === 'NotInstantiated'),
      async run(d) {
        // The files only; their rows become Ready in 'record' (one statement with the VM's).
        for (const v of d.volumes!.filter((x) => x.status === 'NotInstantiated')) {
          await app.use('primaryStorage').createVolume(d.host!, await createVolumeCmd(app, v));
          d.instantiated.push(v);
        }
      },
      async rollback(d) {
        // The rows were never marked Ready: only the files go.
        for (const v of d.instantiated) {
          await deleteVolumeBits(app, d.host!.uuid, v).catch((e) =>
            console.error(`[vm] rollback: cannot delete volume file ${v.installPath}:`, toApiError(e).message),
          );
        }
        d.instantiated = [];
      },
    },
    {
      name: 'network-services',
      async run(d) {
        await svc.applyNetworkServices(d.vm!, d.nics!);
      },
      async rollback(d) {
        await svc.releaseNetworkServices(d.vm!, d.nics!);
      },
    },
    {
      name: 'start-on-hypervisor',
      when: (d) => d.startOnHypervisor,
      async run(d) {
        const root = d.volumes!.find((v) => v.type === 'Root')!;
        const data = d.volumes!.filter((v) => v.type === 'Data').sort((a, b) => (a.deviceId ?? 0) - (b.deviceId ?? 0));
        const nics = [...d.nics!].sort((a, b) => a.deviceId - b.deviceId);
        // Boot devices and the ISO in the CD-ROM drive come from the VM's tags (compute-ops.ts).
        const cmd = {
          ...startVmCmd(d.vm!, root, data, nics, d.host!.managementIp, await nicNetworks(app, nics)),
          ...(await bootOptionsOf(app, d.vm!, root)),
        };
        await hostCallOn(app, d.host!, '/vm/start', cmd);
      },
      async rollback(d) {
        await hostCall(app, d.host!.uuid, '/vm/destroy', { uuid: d.vmUuid });
      },
    },
    {
      name: 'record',
      async run(d) {
        const host = d.host!;
        const vm = d.vm!;
        const running = d.startOnHypervisor;
        const now = new Date();
        const set = {
          state: running ? 'Running' : 'Stopped',
          hostUuid: running ? host.uuid : null,
          lastHostUuid: host.uuid,
          clusterUuid: host.clusterUuid,
          zoneUuid: host.zoneUuid,
          hypervisorType: host.hypervisorType,
          lastOpDate: now,
        };
        // One statement: the new volumes Ready, the NICs' hypervisor type (when it changes), the VM's state and host.
        // Each row by its key, rendered once per shape (db/perf/template.ts): PostgreSQL plans such a statement once (a
        // generic plan) instead of on every call, and the server does not render it every time either.
        const nicUuids = d.nics!.filter((n) => n.hypervisorType !== host.hypervisorType).map((n) => n.uuid);
        const at = now.toISOString();
        const record = (bind: Bind) => {
          // Values first; the SQL is built only when this shape has no text yet (db/perf/template.ts `Deferred`).
          const vols = d.instantiated.map((v, i) => ({
            ps: bind(`vol${i}.ps`, v.primaryStorageUuid),
            path: bind(`vol${i}.path`, v.installPath),
            size: bind(`vol${i}.size`, v.size),
            uuid: bind(`vol${i}.uuid`, v.uuid),
          }));
          const when = bind('at', at);
          const nics = nicUuids.length ? { type: bind('hypervisorType', host.hypervisorType), uuids: bind.array('nicUuids', nicUuids) } : undefined;
          const vmSet = {
            state: bind('state', set.state),
            hostUuid: bind('hostUuid', set.hostUuid),
            lastHostUuid: bind('lastHostUuid', set.lastHostUuid),
            clusterUuid: bind('clusterUuid', set.clusterUuid),
            zoneUuid: bind('zoneUuid', set.zoneUuid),
            hypervisorType: bind('vmHypervisorType', set.hypervisorType),
            uuid: bind('vmUuid', vm.uuid),
          };
          return () => {
            const ctes = vols.map(
              (v, i) => sql`${sql.identifier(`vol${i}`)} AS (
              UPDATE ${volumes} SET status = 'Ready', primary_storage_uuid = ${v.ps}, install_path = ${v.path},
                     actual_size = ${v.size}::bigint, last_op_date = ${when}::timestamptz
               WHERE ${volumes.uuid} = ${v.uuid} RETURNING 1)`,
            );
            if (nics)
              ctes.push(sql`nic AS (UPDATE ${vmNics} SET hypervisor_type = ${nics.type} WHERE ${vmNics.uuid} = ANY(${nics.uuids}::text[]) RETURNING 1)`);
            return sql`${ctes.length ? sql`WITH ${sql.join(ctes, sql`, `)} ` : sql``}
            UPDATE ${vmInstances} SET state = ${vmSet.state}, host_uuid = ${vmSet.hostUuid}, last_host_uuid = ${vmSet.lastHostUuid},
                   cluster_uuid = ${vmSet.clusterUuid}, zone_uuid = ${vmSet.zoneUuid}, hypervisor_type = ${vmSet.hypervisorType},
                   last_op_date = ${when}::timestamptz
             WHERE ${vmInstances.uuid} = ${vmSet.uuid}`;
          };
        };
        if (running) await records.rows(app.db, 'record-vm', record);
        else {
          // CreateStopped: the volumes stay on the host's storage, the host's capacity is given back.
          await app.db.transaction(async (tx) => {
            await app.use('hosts').releaseCapacity(tx, host.uuid, vm.cpuNum, vm.memorySize);
            await records.rows(tx, 'record-vm', record);
          });
        }
        for (const v of d.instantiated) Object.assign(v, { status: 'Ready', actualSize: v.size, lastOpDate: now });
        for (const n of d.nics!) n.hypervisorType = host.hypervisorType;
        d.vm = { ...vm, ...set };
        // The flow holds every volume of the VM: listeners (local storage's records) need not read them again.
        const storage = [...new Set(d.volumes!.flatMap((v) => (v.primaryStorageUuid ? [v.primaryStorageUuid] : [])))];
        svc.emitState(vm.uuid, vm.state, set.state, set.hostUuid, storage);
      },
    },
  ];
}

/** The record step's texts (one per number of new volumes, with or without NICs to update). */
const records = new StatementTemplates();
