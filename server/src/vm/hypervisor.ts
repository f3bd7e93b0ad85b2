// What the VM domain says to host agents (zstack-internals.md §4.2, openapi/agents/protocol.yaml): the transfer
// objects for volumes and NICs and the commands built from rows. Calls go through the host service, which marks
// an unreachable host Disconnected and answers HOST.1010.
import { and, inArray, eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { AgentPathOf, AgentRequest } from '../agent-client/index.js';
import { imageBackupStorageRefs, l2Networks, l3Networks, vmInstances, vmNics } from '../db/schema/index.js';
import type { HostRow } from '../host/index.js';
import type { NicRow, VmRow, VolumeRow } from './inventory.js';

export const volumeTO = (v: VolumeRow) => ({
  installPath: v.installPath!,
  deviceId: v.deviceId ?? 0,
  deviceType: 'file' as const,
  volumeUuid: v.uuid,
  useVirtio: true,
});

export const nicInternalName = (vm: Pick<VmRow, 'internalId'>, deviceId: number) => `vnic${vm.internalId}.${deviceId}`;

/** What a host needs to plug a NIC of an L3 network: its L2's bridge, and whether the Flat provider serves DHCP. */
export interface NicNetwork {
  bridgeName: string;
  physicalInterface: string;
  vlan?: number;
  flatDhcp: boolean;
}

/** Upstream's bridge names: `br_<physical interface>` (L2NoVlan), `br_<physical interface>_<vlan>` (L2Vlan). */
export function bridgeNameOf(physicalInterface: string, vlan?: number | null): string {
  const name = vlan === undefined || vlan === null ? `br_${physicalInterface}` : `br_${physicalInterface}_${vlan}`;
  return name.replace(/\./g, '_').slice(0, 15);
}

/** The networks of these NICs' L3s (remembered reads: every VM start asks; networks change rarely). */
export async function nicNetworks(app: DomainContext, nics: Pick<NicRow, 'l3NetworkUuid'>[]): Promise<Map<string, NicNetwork>> {
  const l3Uuids = [...new Set(nics.map((n) => n.l3NetworkUuid).filter((u): u is string => !!u))].sort();
  const out = new Map<string, NicNetwork>();
  if (l3Uuids.length === 0) return out;
  const rows = await app.remembered(`NicNetworks:${l3Uuids.join(',')}`, () =>
    app.db
      .select({ l3: l3Networks.uuid, physicalInterface: l2Networks.physicalInterface, type: l2Networks.type, vlan: l2Networks.vlan })
      .from(l3Networks)
      .innerJoin(l2Networks, eq(l2Networks.uuid, l3Networks.l2NetworkUuid))
      .where(inArray(l3Networks.uuid, l3Uuids)),
  );
  for (const r of rows) {
    const vlan = r.type === 'L2VlanNetwork' && r.vlan !== null ? r.vlan : undefined;
    const providers = await app.use('networks').providersOf(r.l3);
    out.set(r.l3, {
      bridgeName: bridgeNameOf(r.physicalInterface, vlan),
      physicalInterface: r.physicalInterface,
      ...(vlan !== undefined ? { vlan } : {}),
      flatDhcp: providers.some((p) => p.providerType === 'Flat' && p.serviceType === 'DHCP'),
    });
  }
  return out;
}

export const nicTO = (vm: VmRow, n: NicRow, net?: NicNetwork) => {
  const to: Record<string, unknown> = {
    mac: n.mac,
    uuid: n.uuid,
    deviceId: n.deviceId,
    nicInternalName: n.internalName ?? nicInternalName(vm, n.deviceId),
    l3NetworkUuid: n.l3NetworkUuid,
    useVirtio: true,
  };
  if (n.ip) Object.assign(to, { ip: n.ip, netmask: n.netmask, gateway: n.gateway });
  if (n.metaData) to.metaData = n.metaData;
  if (net) Object.assign(to, net.flatDhcp ? net : { ...net, flatDhcp: undefined });
  return to as { mac: string; uuid: string; deviceId: number };
};

/**
 * Where a root volume's image lives on its primary storage (the cache the host fills from the backup storage):
 * `<primary storage url>/imagecache/template/<image uuid>/<image uuid>.qcow2`.
 */
export function imageCachePathOf(rootInstallPath: string, imageUuid: string): string | undefined {
  const i = rootInstallPath.indexOf('/rootVolumes/');
  return i < 0 ? undefined : `${rootInstallPath.slice(0, i)}/imagecache/template/${imageUuid}/${imageUuid}.qcow2`;
}

/** For a root volume made from an image: where the host finds the image (cache path, backup storage path). */
export async function rootImageSource(app: DomainContext, v: Pick<VolumeRow, 'type' | 'rootImageUuid' | 'installPath'>) {
  if (v.type !== 'Root' || !v.rootImageUuid || !v.installPath) return {};
  // No cache path (storage types whose volumes are not files under `rootVolumes/`, e.g. Ceph): the source only.
  const imageInstallPath = imageCachePathOf(v.installPath, v.rootImageUuid);
  const imageUuid = v.rootImageUuid;
  const refs = await app.remembered(`ImageBsRefs:${imageUuid}`, () =>
    app.db.select().from(imageBackupStorageRefs).where(eq(imageBackupStorageRefs.imageUuid, imageUuid)),
  );
  const ref = refs.find((r) => r.status === 'Ready' && r.installPath);
  return ref ? { ...(imageInstallPath ? { imageInstallPath } : {}), backupStorageUuid: ref.backupStorageUuid, backupStorageInstallPath: ref.installPath! } : {};
}

/** The command that creates a volume's file on its host's primary storage (install path set when the volume was made). */
export async function createVolumeCmd(app: DomainContext, v: VolumeRow): Promise<AgentRequest<'/primarystorage/volume/create'>> {
  return {
    installPath: v.installPath!,
    size: v.size,
    volumeUuid: v.uuid,
    primaryStorageUuid: v.primaryStorageUuid ?? undefined,
    ...(await rootImageSource(app, v)),
  };
}

export function startVmCmd(vm: VmRow, root: VolumeRow, dataVolumes: VolumeRow[], nics: NicRow[], hostManagementIp: string, networks?: Map<string, NicNetwork>) {
  return {
    vmInstanceUuid: vm.uuid,
    vmInternalId: vm.internalId,
    vmName: vm.name,
    memory: vm.memorySize,
    cpuNum: vm.cpuNum,
    cpuSpeed: vm.cpuSpeed,
    socketNum: 1,
    cpuOnSocket: vm.cpuNum,
    bootDev: ['hd'],
    rootVolume: volumeTO(root),
    dataVolumes: dataVolumes.map(volumeTO),
    nics: nics.map((n) => nicTO(vm, n, n.l3NetworkUuid ? networks?.get(n.l3NetworkUuid) : undefined)),
    timeout: 300,
    useVirtio: true,
    consoleMode: 'vnc',
    hostManagementIp,
    // A real host runs a virtual router as a namespace, not from its image (agents/src/network/router-namespace.ts).
    ...(vm.type === 'ApplianceVm' && vm.applianceVmType ? { applianceVmType: vm.applianceVmType } : {}),
  };
}

/**
 * After a KVM host connects, it serves the Flat provider's DHCP of the NICs of its running VMs again (upstream's
 * FlatDhcpBackend on host connect): a restarted host, or an L3 moved to the Flat provider (release notes §9, whose
 * last step is "reconnect all hosts"), has the leases its VMs renew.
 */
export async function applyFlatDhcpOnHost(app: DomainContext, host: HostRow): Promise<void> {
  if (host.hypervisorType !== 'KVM') return;
  const rows = await app.db
    .select({ vm: vmInstances, nic: vmNics })
    .from(vmInstances)
    .innerJoin(vmNics, eq(vmNics.vmInstanceUuid, vmInstances.uuid))
    .where(and(eq(vmInstances.hostUuid, host.uuid), inArray(vmInstances.state, ['Running', 'Paused'])));
  const networks = await nicNetworks(
    app,
    rows.map((r) => r.nic),
  );
  const byVm = new Map<string, { vmUuid: string; nics: ReturnType<typeof nicTO>[] }>();
  for (const { vm, nic } of rows) {
    const net = nic.l3NetworkUuid ? networks.get(nic.l3NetworkUuid) : undefined;
    if (!net?.flatDhcp || !nic.ip) continue;
    const entry = byVm.get(vm.uuid) ?? { vmUuid: vm.uuid, nics: [] };
    entry.nics.push(nicTO(vm, nic, net));
    byVm.set(vm.uuid, entry);
  }
  if (byVm.size) await hostCallOn(app, host, '/flatnetworkprovider/dhcp/apply', { vms: [...byVm.values()] });
}

/** One agent call about a host (through the host service: deadline, HOST.1010, Disconnected marking). */
export const hostCall = <P extends AgentPathOf<'host'>>(app: DomainContext, hostUuid: string, path: P, body: AgentRequest<P>, timeoutMs?: number) =>
  app.use('hosts').call(hostUuid, path, body, timeoutMs ? { timeoutMs } : {});

/** hostCall for a host row the caller holds (just allocated, so known Connected): no second read of the host. */
export const hostCallOn = <P extends AgentPathOf<'host'>>(app: DomainContext, host: HostRow, path: P, body: AgentRequest<P>, timeoutMs?: number) =>
  app.use('hosts').callOn(host, path, body, timeoutMs ? { timeoutMs } : {});
