// What the VM domain says to host agents (zstack-internals.md §4.2, openapi/agents/protocol.yaml): the transfer
// objects for volumes and NICs and the commands built from rows. Calls go through the host service, which marks
// an unreachable host Disconnected and answers HOST.1010.
import type { App } from '../app.js';
import type { HostRow } from '../host/service.js';
import type { NicRow, VmRow, VolumeRow } from './inventory.js';

export const volumeTO = (v: VolumeRow) => ({
  installPath: v.installPath!,
  deviceId: v.deviceId ?? 0,
  deviceType: 'file' as const,
  volumeUuid: v.uuid,
  useVirtio: true,
});

export const nicInternalName = (vm: Pick<VmRow, 'internalId'>, deviceId: number) => `vnic${vm.internalId}.${deviceId}`;

export const nicTO = (vm: VmRow, n: NicRow) => {
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
  return to as { mac: string; uuid: string; deviceId: number };
};

export function startVmCmd(vm: VmRow, root: VolumeRow, dataVolumes: VolumeRow[], nics: NicRow[], hostManagementIp: string) {
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
    nics: nics.map((n) => nicTO(vm, n)),
    timeout: 300,
    useVirtio: true,
    consoleMode: 'vnc',
    hostManagementIp,
  };
}

/** One agent call about a host (through the host service: deadline, HOST.1010, Disconnected marking). */
export const hostCall = <R = Record<string, unknown>>(app: App, hostUuid: string, path: string, body: object, timeoutMs?: number) =>
  app.services.hosts.call<R & { success: boolean }>(hostUuid, path, body, timeoutMs ? { timeoutMs } : {});

/** hostCall for a host row the caller holds (just allocated, so known Connected): no second read of the host. */
export const hostCallOn = <R = Record<string, unknown>>(app: App, host: HostRow, path: string, body: object, timeoutMs?: number) =>
  app.services.hosts.callOn<R & { success: boolean }>(host, path, body, timeoutMs ? { timeoutMs } : {});
