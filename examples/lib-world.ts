// Builds the seed's world (release notes §9) through the SDK: a zone, a cluster, simulated hosts, simulated
// primary and backup storage, the tiny tryout image, an instance offering, an L2 with an L3 and an IP range, the
// VirtualRouter provider's DHCP+DNS on it and a virtual router offering. Shared by the §9, timeout, GC and
// console tests and by the benchmarks.
import type { ZStackClient } from '../sdk/src/index.js';

export interface World {
  zoneUuid: string;
  clusterUuid: string;
  hostUuids: string[];
  primaryStorageUuid: string;
  backupStorageUuid: string;
  imageUuid: string;
  instanceOfferingUuid: string;
  l2NetworkUuid: string;
  l3NetworkUuid: string;
  ipRangeUuid: string;
  virtualRouterProviderUuid: string;
  flatProviderUuid: string;
}

export interface WorldOptions {
  hosts?: number;
  /** CPUs and memory per simulated host. */
  hostCpu?: number;
  hostMemory?: number;
  /** Attach VirtualRouter DHCP+DNS to the L3 (the seed's starting point). Default true. */
  virtualRouter?: boolean;
  /** IP range bounds; default the seed's 192.168.201.180–199 in 192.168.200.0/22. */
  startIp?: string;
  endIp?: string;
}

export async function buildWorld(zs: ZStackClient, opts: WorldOptions = {}): Promise<World> {
  const zone = (await zs.createZone({ name: 'zone1' })).inventory;
  const cluster = (await zs.createCluster({ zoneUuid: zone.uuid, name: 'cluster1', hypervisorType: 'Simulator' })).inventory;
  const hostUuids: string[] = [];
  for (let i = 0; i < (opts.hosts ?? 2); i++) {
    const host = await zs.addSimulatorHost({
      name: `host${i + 1}`,
      managementIp: `192.168.200.${150 + i}`,
      clusterUuid: cluster.uuid,
      cpuCapacity: opts.hostCpu ?? 8,
      memoryCapacity: opts.hostMemory ?? 8 * 2 ** 30,
    });
    hostUuids.push(host.inventory.uuid);
  }
  const ps = (
    await zs.addSimulatorPrimaryStorage({
      name: 'ps1',
      zoneUuid: zone.uuid,
      url: '/zstack_ps',
      totalCapacity: 10 * 2 ** 40,
      availableCapacity: 10 * 2 ** 40,
    })
  ).inventory;
  await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
  const bs = (await zs.addSimulatorBackupStorage({ name: 'bs1', url: '/zstack_bs', totalCapacity: 2 ** 40, availableCapacity: 2 ** 40 })).inventory;
  await zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid });
  const image = (
    await zs.addImage({
      name: 'zstack-image-1.2',
      url: 'http://download.zstack.org/templates/zstack-image-1.2.qcow2',
      format: 'qcow2',
      mediaType: 'RootVolumeTemplate',
      platform: 'Linux',
      backupStorageUuids: [bs.uuid],
    })
  ).inventory;
  const offering = (await zs.createInstanceOffering({ name: 'small', cpuNum: 1, memorySize: 128 * 2 ** 20 })).inventory;
  const l2 = (await zs.createL2NoVlanNetwork({ name: 'l2-flat', zoneUuid: zone.uuid, physicalInterface: 'eth0' })).inventory;
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
  const l3 = (await zs.createL3Network({ name: 'l3-etpz', l2NetworkUuid: l2.uuid })).inventory;
  await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '8.8.8.8' });
  const range = (
    await zs.addIpRange({
      l3NetworkUuid: l3.uuid,
      name: 'ipr-dk7p',
      startIp: opts.startIp ?? '192.168.201.180',
      endIp: opts.endIp ?? '192.168.201.199',
      netmask: '255.255.252.0',
      gateway: '192.168.200.1',
    })
  ).inventory;
  const providers = (await zs.queryNetworkServiceProvider({})).inventories!;
  const vr = providers.find((p) => p.type === 'VirtualRouter')!;
  const flat = providers.find((p) => p.type === 'Flat')!;
  if (opts.virtualRouter ?? true) {
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [vr.uuid]: ['DHCP', 'DNS'] } });
    await zs.createVirtualRouterOffering({
      name: 'vr-offering',
      cpuNum: 1,
      memorySize: 512 * 2 ** 20,
      zoneUuid: zone.uuid,
      managementNetworkUuid: l3.uuid,
      publicNetworkUuid: l3.uuid,
      imageUuid: image.uuid,
      isDefault: true,
    });
  }
  return {
    zoneUuid: zone.uuid,
    clusterUuid: cluster.uuid,
    hostUuids,
    primaryStorageUuid: ps.uuid,
    backupStorageUuid: bs.uuid,
    imageUuid: image.uuid,
    instanceOfferingUuid: offering.uuid,
    l2NetworkUuid: l2.uuid,
    l3NetworkUuid: l3.uuid,
    ipRangeUuid: range.uuid,
    virtualRouterProviderUuid: vr.uuid,
    flatProviderUuid: flat.uuid,
  };
}
