// NFS, Ceph and iSCSI storage through the SDK on the simulator agent: validation of each add, NFS mounted by the
// cluster's hosts on attach with the export's capacity, Ceph primary + backup storage on one simulated cluster (same
// fsid), monitors added and removed, VMs on NFS and on Ceph (root volume cloned from the Ceph backup storage's image),
// iSCSI add/update, passwords absent from every reply, and an agent failure on add leaving nothing behind.
import t from 'tap';
import { eq } from 'drizzle-orm';
import { AGENT_SECRET, startServer, type TestServer } from '../lib/harness.js';
import { ZStackError } from '../../sdk/src/index.js';
import { cephBackupStorageMons, cephPrimaryStorageMons, primaryStorage } from '../../server/src/db/schema/index.js';
import { newUuid } from '../../server/src/core/ids.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const TiB = 1024 ** 4;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function sim(s: TestServer, path: string, body: object): Promise<any> {
  const res = await fetch(s.sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return res.json();
}

async function failsWith(p: Promise<unknown>, code: string, details: RegExp): Promise<boolean> {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  return e instanceof ZStackError && e.code === code && details.test(e.details ?? '');
}

t.test('NFS, Ceph and iSCSI storage', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const { inventory: zone } = await zs.createZone({ name: 'z' });
  const { inventory: cluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'c', hypervisorType: 'Simulator' });
  const hostUuids: string[] = [];
  for (const i of [1, 2]) {
    const { inventory: h } = await zs.addSimulatorHost({
      name: `h${i}`,
      managementIp: `10.0.1.${i}`,
      clusterUuid: cluster.uuid,
      cpuCapacity: 8,
      memoryCapacity: 16 * GiB,
    });
    hostUuids.push(h.uuid);
  }
  const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2', zoneUuid: zone.uuid, physicalInterface: 'eth0' });
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
  const { inventory: l3 } = await zs.createL3Network({ name: 'l3', l2NetworkUuid: l2.uuid });
  await zs.addIpRange({
    l3NetworkUuid: l3.uuid,
    name: 'r',
    startIp: '10.10.0.10',
    endIp: '10.10.0.200',
    netmask: '255.255.255.0',
    gateway: '10.10.0.1',
  } as never);
  const { inventory: offering } = await zs.createInstanceOffering({ name: 'o', cpuNum: 1, memorySize: 256 * MiB });
  const mon = (host: string, password = 'monsecret') => `root:${password}@${host}/?monPort=6789`;

  // ---------------------------------------------------------------- NFS
  t.ok(
    await failsWith(zs.addNfsPrimaryStorage({ name: 'nfs', zoneUuid: zone.uuid, url: '/not/an/export' }), 'SYS.1007', /url/),
    'NFS: a url without host: is refused',
  );
  const { inventory: nfs } = await zs.addNfsPrimaryStorage({ name: 'nfs', zoneUuid: zone.uuid, url: '192.168.0.220:/storage/nfs' });
  t.equal(nfs.type, 'NFS');
  t.equal(nfs.totalCapacity, 0, 'NFS: no capacity before a host mounts it');
  const { inventory: nfsAttached } = await zs.attachPrimaryStorageToCluster({ primaryStorageUuid: nfs.uuid, clusterUuid: cluster.uuid });
  t.equal(nfsAttached.totalCapacity, 10 * TiB, "NFS: the export's capacity, once (shared, not summed over hosts)");
  for (const h of hostUuids) {
    const records = (await sim(s, '/simulator/hosts/records', { hostUuid: h })).records as Array<{ path: string; body: { mountPath: string; url: string } }>;
    const mount = records.find((r) => r.path === '/nfsprimarystorage/mount');
    t.equal(mount?.body.url, '192.168.0.220:/storage/nfs', `NFS: host ${h} mounted the export`);
    t.equal(mount?.body.mountPath, `/opt/zstack/nfsprimarystorage/prim-${nfs.uuid}`);
  }

  // ---------------------------------------------------------------- Ceph backup storage
  t.ok(await failsWith(zs.addCephBackupStorage({ name: 'cbs', url: 'ceph', monUrls: [] }), 'SYS.1007', /monUrls/), 'Ceph BS: no monitors is refused');
  t.ok(await failsWith(zs.addCephBackupStorage({ name: 'cbs', url: 'ceph', monUrls: ['no-credentials-host'] }), 'SYS.1007', /monUrl/), 'Ceph BS: a bad monUrl');
  t.ok(
    await failsWith(zs.addCephBackupStorage({ name: 'cbs', url: 'ceph', monUrls: [mon('ceph-a'), mon('ceph-a')] }), 'SYS.1007', /twice/),
    'Ceph BS: a monitor given twice',
  );
  const { inventory: cbs } = await zs.addCephBackupStorage({ name: 'cbs', url: 'ceph', monUrls: [mon('ceph-a'), mon('ceph-b')] });
  t.equal(cbs.type, 'Ceph');
  t.equal(cbs.status, 'Connected');
  t.equal((cbs as { mons: unknown[] }).mons.length, 2);
  t.equal((cbs as { poolName: string }).poolName, `bak-t-${cbs.uuid}`);
  t.equal(cbs.totalCapacity, 10 * TiB, "Ceph BS: the cluster's capacity");
  t.notOk(JSON.stringify(cbs).includes('monsecret'), 'Ceph BS: no monitor password in the reply');
  t.ok(
    await failsWith(zs.addCephBackupStorage({ name: 'cbs2', url: 'ceph', monUrls: [mon('ceph-b')] }), 'SYS.1007', /already/),
    'Ceph BS: a monitor of another Ceph backup storage is refused',
  );
  await zs.attachBackupStorageToZone({ backupStorageUuid: cbs.uuid, zoneUuid: zone.uuid });
  const { inventory: image } = await zs.addImage({
    name: 'img',
    url: `http://download.zstack.org/img.qcow2?size=${512 * MiB}`,
    format: 'qcow2',
    platform: 'Linux',
    backupStorageUuids: [cbs.uuid],
  });
  t.equal(image.status, 'Ready');
  t.equal(image.backupStorageRefs?.[0]?.installPath, `ceph://bak-t-${cbs.uuid}/${image.uuid}`, 'Ceph BS: the image is an RBD image of its pool');

  // ---------------------------------------------------------------- Ceph primary storage (same monitors → same cluster)
  const { inventory: cps } = await zs.addCephPrimaryStorage({ name: 'cps', zoneUuid: zone.uuid, url: 'ceph', monUrls: [mon('ceph-a')] });
  const cephPs = cps as typeof cps & { fsid: string; mons: Array<{ hostname: string }>; rootVolumePoolName: string };
  t.equal(cephPs.fsid, (cbs as { fsid?: string }).fsid, 'Ceph PS and BS on the same monitors share the fsid');
  t.equal(cephPs.rootVolumePoolName, `pri-v-r-${cps.uuid}`);
  t.equal(cps.totalCapacity, 10 * TiB);
  t.notOk(JSON.stringify(cps).includes('monsecret'), 'Ceph PS: no monitor password in the reply');
  t.ok(
    await failsWith(zs.addCephPrimaryStorage({ name: 'x', zoneUuid: zone.uuid, url: 'ceph', monUrls: [mon('ceph-a')] }), 'SYS.1007', /already/),
    'Ceph PS: a monitor of another Ceph primary storage is refused',
  );
  // Monitors: add (answering for the same fsid), a duplicate refused, remove, the last one kept.
  const { inventory: twoMons } = await zs.addMonToCephPrimaryStorage({ uuid: cps.uuid, monUrls: [mon('ceph-c')] });
  t.same((twoMons as { mons: Array<{ hostname: string }> }).mons.map((m) => m.hostname).sort(), ['ceph-a', 'ceph-c']);
  t.ok(await failsWith(zs.addMonToCephPrimaryStorage({ uuid: cps.uuid, monUrls: [mon('ceph-c')] }), 'SYS.1007', /already/), 'a monitor added twice');
  const { inventory: oneMon } = await zs.removeMonFromCephPrimaryStorage({ uuid: cps.uuid, monHostnames: ['ceph-a'] });
  t.same(
    (oneMon as { mons: Array<{ hostname: string }> }).mons.map((m) => m.hostname),
    ['ceph-c'],
  );
  t.ok(
    await failsWith(zs.removeMonFromCephPrimaryStorage({ uuid: cps.uuid, monHostnames: ['ceph-c'] }), 'SYS.1004', /every monitor/),
    'the last monitor stays',
  );
  const queried = await zs.queryCephPrimaryStorage({ q: ['mons.hostname=ceph-c'] });
  t.same(
    queried.inventories?.map((i) => i.uuid),
    [cps.uuid],
    'QueryCephPrimaryStorage by monitor hostname',
  );
  await zs.attachPrimaryStorageToCluster({ primaryStorageUuid: cps.uuid, clusterUuid: cluster.uuid });
  // Reconnect asks the monitors again: failing → Disconnected; answering → Connected.
  await sim(s, '/simulator/storage/config', { kind: 'ceph', uuid: cps.uuid, failCommands: ['/ceph/primarystorage/init'] });
  t.ok(await failsWith(zs.reconnectPrimaryStorage({ uuid: cps.uuid }), 'SYS.1006', /simulated failure/), 'Ceph PS: reconnect with a failing agent fails');
  t.equal((await zs.queryCephPrimaryStorage({ q: [`uuid=${cps.uuid}`] })).inventories![0].status, 'Disconnected');
  await sim(s, '/simulator/storage/config', { kind: 'ceph', uuid: cps.uuid, failCommands: [] });
  t.equal((await zs.reconnectPrimaryStorage({ uuid: cps.uuid })).inventory.status, 'Connected', 'Ceph PS: reconnected');

  // ---------------------------------------------------------------- VMs on NFS and on Ceph
  const { inventory: vmNfs } = await zs.createVmInstance({
    name: 'on-nfs',
    instanceOfferingUuid: offering.uuid,
    imageUuid: image.uuid,
    l3NetworkUuids: [l3.uuid],
    primaryStorageUuidForRootVolume: nfs.uuid,
  });
  const nfsRoot = vmNfs.allVolumes?.find((v) => v.type === 'Root');
  t.equal(nfsRoot?.primaryStorageUuid, nfs.uuid);
  t.match(nfsRoot?.installPath, new RegExp(`^/opt/zstack/nfsprimarystorage/prim-${nfs.uuid}/rootVolumes/`), 'NFS: the root volume is under the mount');
  const nfsAfter = (await zs.queryPrimaryStorage({ q: [`uuid=${nfs.uuid}`] })).inventories![0];
  t.equal(nfsAfter.availableCapacity, 10 * TiB - 512 * MiB, 'NFS: the root volume is taken from the available capacity');

  const { inventory: vmCeph } = await zs.createVmInstance({
    name: 'on-ceph',
    instanceOfferingUuid: offering.uuid,
    imageUuid: image.uuid,
    l3NetworkUuids: [l3.uuid],
    primaryStorageUuidForRootVolume: cps.uuid,
  });
  const cephRoot = vmCeph.allVolumes?.find((v) => v.type === 'Root');
  t.equal(cephRoot?.installPath, `ceph://pri-v-r-${cps.uuid}/${cephRoot?.uuid}`, 'Ceph: the root volume is an RBD image of the root pool');
  const cluster1 = await sim(s, '/simulator/storage/state', { kind: 'ceph', uuid: cps.uuid });
  const clone = (cluster1.images as Array<{ path: string; parent?: string }>).find((i) => i.path === cephRoot?.installPath);
  t.equal(clone?.parent, `ceph://bak-t-${cbs.uuid}/${image.uuid}`, "Ceph: cloned from the backup storage's image (same cluster)");
  const { inventory: data } = await zs.createDataVolume({ name: 'd', diskSize: GiB, primaryStorageUuid: cps.uuid } as never);
  t.ok(data.uuid, 'a data volume on Ceph');

  // Destroying the Ceph VM (Direct) deletes its RBD image through the Ceph agent.
  await zs.updateGlobalConfig({ category: 'vm', name: 'deletionPolicy', value: 'Direct' });
  await zs.destroyVmInstance({ uuid: vmCeph.uuid });
  const cluster2 = await sim(s, '/simulator/storage/state', { kind: 'ceph', uuid: cps.uuid });
  t.notOk(
    (cluster2.images as Array<{ path: string }>).some((i) => i.path === cephRoot?.installPath),
    'Ceph: the root volume is gone from the cluster',
  );

  // ---------------------------------------------------------------- agent failure on add: nothing half-stored
  const failing = newUuid();
  await sim(s, '/simulator/storage/config', { kind: 'ceph', uuid: failing, failCommands: ['/ceph/primarystorage/init'] });
  t.ok(
    await failsWith(
      zs.addCephPrimaryStorage({ name: 'bad', zoneUuid: zone.uuid, url: 'ceph', monUrls: [mon('ceph-z')], resourceUuid: failing }),
      'SYS.1006',
      /simulated failure/,
    ),
    'Ceph PS: the agent failing init fails the add',
  );
  t.same(await s.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, failing)), [], 'no primary storage row left');
  t.same(await s.app.db.select().from(cephPrimaryStorageMons).where(eq(cephPrimaryStorageMons.hostname, 'ceph-z')), [], 'no monitor row left');

  // ---------------------------------------------------------------- iSCSI
  t.ok(
    await failsWith(
      zs.addIscsiFileSystemBackendPrimaryStorage({
        name: 'i',
        zoneUuid: zone.uuid,
        url: '/iscsi',
        hostname: '10.0.9.1',
        sshUsername: 'root',
        sshPassword: 'sshsecret',
        chapUsername: 'u',
      }),
      'SYS.1007',
      /chap/,
    ),
    'iSCSI: chapUsername without chapPassword',
  );
  const { inventory: iscsi } = await zs.addIscsiFileSystemBackendPrimaryStorage({
    name: 'i',
    zoneUuid: zone.uuid,
    url: '/iscsi',
    hostname: '10.0.9.1',
    sshUsername: 'root',
    sshPassword: 'sshsecret',
    chapUsername: 'u',
    chapPassword: 'chapsecret',
  });
  t.equal(iscsi.totalCapacity, 10 * TiB);
  t.equal((iscsi as { hostname?: string }).hostname, '10.0.9.1');
  const { inventory: renamed } = await zs.updateIscsiFileSystemBackendPrimaryStorage({ uuid: iscsi.uuid, name: 'i2', sshPassword: 'newsecret' });
  t.equal(renamed.name, 'i2');
  await zs.attachPrimaryStorageToCluster({ primaryStorageUuid: iscsi.uuid, clusterUuid: cluster.uuid });
  const { inventory: vmIscsi } = await zs.createVmInstance({
    name: 'on-iscsi',
    instanceOfferingUuid: offering.uuid,
    imageUuid: image.uuid,
    l3NetworkUuids: [l3.uuid],
    primaryStorageUuidForRootVolume: iscsi.uuid,
  });
  const iscsiRoot = vmIscsi.allVolumes?.find((v) => v.type === 'Root');
  t.match(
    iscsiRoot?.installPath,
    /^iscsi:\/\/10\.0\.9\.1:3260\/iqn\.2015-01\.org\.zstack:[0-9a-f]{32}\/1;file:\/\/\/iscsi\/rootVolumes\//,
    'iSCSI: the root volume is a target',
  );
  const server = await sim(s, '/simulator/storage/state', { kind: 'iscsi', uuid: iscsi.uuid });
  t.ok(
    (server.images as Array<{ path: string }>).some((i) => iscsiRoot?.installPath?.endsWith(i.path)),
    'iSCSI: the volume file is on the server',
  );
  await zs.destroyVmInstance({ uuid: vmIscsi.uuid });
  await zs.detachPrimaryStorageFromCluster({ primaryStorageUuid: iscsi.uuid, clusterUuid: cluster.uuid });
  const all = JSON.stringify([iscsi, renamed, await zs.queryIscsiFileSystemBackendPrimaryStorage({}), await zs.queryPrimaryStorage({})]);
  t.notOk(/sshsecret|chapsecret|newsecret/.test(all), 'iSCSI: no password in any reply');

  // Deleting: the Ceph backup storage goes with its monitors (and its images: only there); iSCSI primary storage.
  await zs.deleteBackupStorage({ uuid: cbs.uuid });
  t.same((await zs.queryCephBackupStorage({})).inventories, [], 'Ceph BS deleted');
  t.same(await s.app.db.select().from(cephBackupStorageMons).where(eq(cephBackupStorageMons.backupStorageUuid, cbs.uuid)), [], 'its monitors too');
  await zs.deletePrimaryStorage({ uuid: iscsi.uuid });
  t.same((await zs.queryIscsiFileSystemBackendPrimaryStorage({})).inventories, [], 'iSCSI PS deleted');

  // The type registry (GetPrimaryStorageTypes / GetBackupStorageTypes read it).
  t.same(s.app.services.primaryStorage.typeNames().sort(), ['Ceph', 'IscsiFileSystemBackendPrimaryStorage', 'LocalStorage', 'NFS', 'SimulatorPrimaryStorage']);
  t.same(s.app.services.backupStorage.typeNames().sort(), ['Ceph', 'SftpBackupStorage', 'SimulatorBackupStorage']);
});
