// Volume snapshots and templates through the SDK on real PostgreSQL and the simulator agent: the tree's shape through
// snapshots, a revert and deletions (with the merge a deletion needs), revert refused on a running VM, primary and
// backup storage capacity before/after, 50 concurrent snapshots of one volume, two templates of one volume at once,
// agent failures rolled back, and snapshots following their volume when it is expunged.
import t from 'tap';
import { startServer, AGENT_SECRET, type TestServer } from '../lib/harness.js';
import { buildWorld, type World } from '../lib/world.js';
import { until } from '../lib/wait.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';

const GiB = 1024 ** 3;

async function sim(s: TestServer, path: string, body: object): Promise<any> {
  const res = await fetch(s.sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return res.json();
}

async function rejects(p: Promise<unknown>): Promise<ZStackError> {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  if (!(e instanceof ZStackError)) throw new Error(`expected a ZStackError, got ${e}`);
  return e;
}

let s: TestServer;
let zs: ZStackClient;
let world: World;

const psAvailable = async () => (await zs.queryPrimaryStorage({ q: [`uuid=${world.primaryStorageUuid}`] })).inventories![0].availableCapacity!;
const bsAvailable = async () => (await zs.queryBackupStorage({ q: [`uuid=${world.backupStorageUuid}`] })).inventories![0].availableCapacity!;
const snapshotsOf = async (volumeUuid: string) => (await zs.queryVolumeSnapshot({ q: [`volumeUuid=${volumeUuid}`] })).inventories!;
const hostFiles = async () => {
  const all = new Set<string>();
  for (const h of world.hostUuids) for (const f of (await sim(s, '/simulator/hosts/volumes', { hostUuid: h })).volumes) all.add(f.installPath);
  return all;
};
const hostPaths = async (path: string) => {
  const out: string[] = [];
  for (const h of world.hostUuids) {
    for (const r of (await sim(s, '/simulator/hosts/records', { hostUuid: h })).records) if (r.path === path) out.push(r.body.volumeInstallPath);
  }
  return out;
};
const dataVolume = async (name: string) =>
  (await zs.createDataVolume({ name, diskSize: GiB, primaryStorageUuid: world.primaryStorageUuid } as never)).inventory!;

t.before(async () => {
  s = await startServer();
  zs = s.client;
  world = await buildWorld(zs, { virtualRouter: false });
});
t.teardown(() => s.close());

t.test('lifecycle and tree shape: chain, revert → new tree, delete with descendants and merge, capacity', async (t) => {
  const vol = await dataVolume('tree');
  const before = await psAvailable();
  const s1 = (await zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 's1' })).inventory!;
  const s2 = (await zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 's2', description: 'second' })).inventory!;
  const s3 = (await zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 's3' })).inventory!;
  t.equal(s1.status, 'Ready');
  t.equal(s1.treeUuid, s3.treeUuid, 'one tree');
  t.notOk(s1.parentUuid, 's1 is the root');
  t.equal(s2.parentUuid, s1.uuid);
  t.equal(s3.parentUuid, s2.uuid);
  t.ok(s1.size > 0 && s2.size > 0, 'snapshots hold bytes');
  t.equal(s1.primaryStorageInstallPath, vol.installPath, 'the first snapshot is the volume file frozen');
  t.same(
    (await snapshotsOf(vol.uuid)).filter((x) => x.latest).map((x) => x.uuid),
    [s3.uuid],
    'latest is the newest',
  );
  t.equal(before - (await psAvailable()), s1.size + s2.size + s3.size, 'primary storage holds the snapshots');

  t.equal((await zs.updateVolumeSnapshot({ uuid: s2.uuid, name: 's2-renamed' })).inventory!.name, 's2-renamed');

  // Revert (not attached: allowed): s2 becomes latest, the next snapshot starts a new tree with a full copy.
  await zs.revertVolumeFromSnapshot({ uuid: s2.uuid });
  t.same(
    (await snapshotsOf(vol.uuid)).filter((x) => x.latest).map((x) => x.uuid),
    [s2.uuid],
  );
  const s4 = (await zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 's4' })).inventory!;
  t.not(s4.treeUuid, s1.treeUuid, 'a new tree after a revert');
  t.equal(s4.fullSnapshot, true);
  const trees = (await zs.getVolumeSnapshotTree({ volumeUuid: vol.uuid })).inventories!;
  t.equal(trees.length, 2);
  t.same(
    trees.map((x) => x.current),
    [false, true],
  );
  const root = trees[0].tree!;
  t.equal(root.inventory.uuid, s1.uuid);
  t.same(
    root.children.map((c) => c.inventory.uuid),
    [s2.uuid],
  );
  t.same(
    root.children[0].children.map((c) => c.inventory.uuid),
    [s3.uuid],
  );
  t.equal((await zs.queryVolumeSnapshotTree({ q: [`volumeUuid=${vol.uuid}`, 'current=true'] })).inventories![0].uuid, s4.treeUuid);

  // Deleting s2 takes s3 with it; the volume sits on s4 now, so nothing is merged.
  const merges = (await hostPaths('/vm/volume/mergesnapshot')).length;
  const avail = await psAvailable();
  await zs.deleteVolumeSnapshot({ uuid: s2.uuid });
  t.same((await snapshotsOf(vol.uuid)).map((x) => x.uuid).sort(), [s1.uuid, s4.uuid].sort());
  t.equal((await psAvailable()) - avail, s2.size + s3.size, 'their bytes are back');
  const files = await hostFiles();
  t.notOk(files.has(s2.primaryStorageInstallPath!) || files.has(s3.primaryStorageInstallPath!), 'their files are gone');
  t.equal((await hostPaths('/vm/volume/mergesnapshot')).length, merges, 'no merge');

  // Deleting the latest (s4, a tree's root): the volume is merged off it first, the tree goes.
  await zs.deleteVolumeSnapshot({ uuid: s4.uuid });
  const merged = await hostPaths('/vm/volume/mergesnapshot');
  t.equal(merged.length, merges + 1, 'the volume was merged off the snapshot');
  t.equal(merged.at(-1), (await zs.queryVolume({ q: [`uuid=${vol.uuid}`] })).inventories![0].installPath);
  t.equal((await zs.getVolumeSnapshotTree({ volumeUuid: vol.uuid })).inventories!.length, 1);
  await zs.deleteVolumeSnapshot({ uuid: s1.uuid });
  t.equal((await snapshotsOf(vol.uuid)).length, 0);
  t.equal(await psAvailable(), before, 'all bytes back');
  await zs.deleteVolumeSnapshot({ uuid: s1.uuid }); // unknown: success

  const e = await rejects(zs.getVolumeSnapshotTree({}));
  t.equal(e.code, 'SYS.1007');
});

t.test('root volume: live snapshot, revert refused while Running, templates need the VM stopped', async (t) => {
  const vm = (
    await zs.createVmInstance({
      name: 'vm1',
      instanceOfferingUuid: world.instanceOfferingUuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [world.l3NetworkUuid],
    } as never)
  ).inventory!;
  const snap = (await zs.createVolumeSnapshot({ volumeUuid: vm.rootVolumeUuid!, name: 'live' })).inventory!;
  t.equal(snap.volumeType, 'Root');
  let e = await rejects(zs.revertVolumeFromSnapshot({ uuid: snap.uuid }));
  t.equal(e.code, 'VM.1000', 'revert refused on a Running VM');
  e = await rejects(zs.createRootVolumeTemplateFromRootVolume({ rootVolumeUuid: vm.rootVolumeUuid!, name: 'tpl' } as never));
  t.equal(e.code, 'VM.1000', 'template refused on a Running VM');
  await zs.stopVmInstance({ uuid: vm.uuid } as never);
  await zs.revertVolumeFromSnapshot({ uuid: snap.uuid });
  const img = (await zs.createRootVolumeTemplateFromRootVolume({ rootVolumeUuid: vm.rootVolumeUuid!, name: 'tpl', platform: 'Linux' } as never)).inventory!;
  t.equal(img.status, 'Ready');
  t.equal(img.mediaType, 'RootVolumeTemplate');
  const fromSnap = (await zs.createRootVolumeTemplateFromVolumeSnapshot({ snapshotUuid: snap.uuid, name: 'tpl-snap' } as never)).inventory!;
  t.equal(fromSnap.status, 'Ready');
  t.equal(fromSnap.backupStorageRefs![0].status, 'Ready');

  // Expunging the VM takes its root volume's snapshots, their files and bytes.
  await zs.updateGlobalConfig({ category: 'vm', name: 'deletionPolicy', value: 'Direct' } as never);
  t.teardown(() => zs.updateGlobalConfig({ category: 'vm', name: 'deletionPolicy', value: 'Delay' } as never));
  await zs.destroyVmInstance({ uuid: vm.uuid });
  await until('the root volume snapshots are gone', async () => (await snapshotsOf(vm.rootVolumeUuid!)).length === 0);
  await until('the snapshot file is deleted', async () => !(await hostFiles()).has(snap.primaryStorageInstallPath!));
});

t.test('backup storage: a snapshot copy and two templates of one volume at once hold backup storage bytes', async (t) => {
  const vol = await dataVolume('bs');
  const snap = (await zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 'b1' })).inventory!;
  let before = await bsAvailable();
  const backed = (await zs.backupVolumeSnapshot({ uuid: snap.uuid } as never)).inventory!;
  t.equal(backed.backupStorageRefs.length, 1);
  t.equal(before - (await bsAvailable()), snap.size, 'the copy holds its size');
  const e = await rejects(zs.backupVolumeSnapshot({ uuid: snap.uuid, backupStorageUuid: world.backupStorageUuid } as never));
  t.equal(e.code, 'SYS.1007', 'already there');
  await zs.deleteVolumeSnapshotFromBackupStorage({ uuid: snap.uuid, backupStorageUuids: [world.backupStorageUuid] });
  t.equal(await bsAvailable(), before, 'copy deleted, bytes back');

  before = await bsAvailable();
  const [a, b] = await Promise.all(
    ['t1', 't2'].map(async (name) => (await zs.createDataVolumeTemplateFromVolume({ volumeUuid: vol.uuid, name } as never)).inventory!),
  );
  t.equal(a.status, 'Ready');
  t.equal(b.status, 'Ready');
  t.not(a.backupStorageRefs![0].installPath, b.backupStorageRefs![0].installPath);
  t.equal(before - (await bsAvailable()), a.actualSize! + b.actualSize!, 'both templates hold backup storage bytes');
  t.notOk(
    [...(await hostFiles())].some((f) => f.includes('templateTemporary')),
    'the temporary copies are gone',
  );

  const psBefore = await psAvailable();
  const fromTemplate = (
    await zs.createDataVolumeFromVolumeTemplate({ imageUuid: a.uuid, name: 'from-tpl', primaryStorageUuid: world.primaryStorageUuid } as never)
  ).inventory!;
  t.equal(fromTemplate.status, 'Ready');
  t.equal(fromTemplate.size, vol.size);
  const fromSnap = (await zs.createDataVolumeFromVolumeSnapshot({ volumeSnapshotUuid: snap.uuid, name: 'from-snap' } as never)).inventory!;
  t.equal(fromSnap.status, 'Ready');
  t.equal(psBefore - (await psAvailable()), fromTemplate.size + fromSnap.size, 'new volumes hold primary storage bytes');
});

t.test('50 concurrent snapshots of one volume: serialised into consistent chains, none lost', async (t) => {
  const vol = await dataVolume('busy');
  const before = await psAvailable();
  const made = await Promise.all(Array.from({ length: 50 }, (_, i) => zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: `c${i}` })));
  t.equal(new Set(made.map((m) => m.inventory!.uuid)).size, 50);
  const all = await snapshotsOf(vol.uuid);
  t.equal(all.length, 50, 'no snapshot lost');
  t.equal(all.filter((x) => x.latest).length, 1, 'one latest');
  const trees = (await zs.getVolumeSnapshotTree({ volumeUuid: vol.uuid })).inventories!;
  t.equal(trees.filter((x) => x.current).length, 1, 'one current tree');
  // Default incrementalSnapshot.maxNum is 16: chains of 16, each after the first rooted on a full copy.
  let count = 0;
  for (const [i, tree] of trees.entries()) {
    let leaf = tree.tree!;
    t.equal(leaf.inventory.fullSnapshot, i > 0);
    let length = 1;
    while (leaf.children.length) {
      t.equal(leaf.children.length, 1, 'a chain, never a fork');
      leaf = leaf.children[0];
      length++;
    }
    count += length;
    t.ok(length <= 16);
  }
  t.equal(count, 50);
  t.equal(
    before - (await psAvailable()),
    all.reduce((sum, x) => sum + x.size, 0),
    'capacity matches the snapshots',
  );
  const volume = (await zs.queryVolume({ q: [`uuid=${vol.uuid}`] })).inventories![0];
  t.ok((await hostFiles()).has(volume.installPath!), 'the volume file exists');
});

t.test('agent failures roll back: no half-made snapshot or image, capacity unchanged', async (t) => {
  const vol = await dataVolume('failing');
  const psBefore = await psAvailable();
  for (const h of world.hostUuids) await zs.updateSimulatorHost({ uuid: h, failCommands: ['/vm/volume/takesnapshot'] } as never);
  let e = await rejects(zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 'x' }));
  t.equal(e.code, 'SYS.1006');
  for (const h of world.hostUuids) await zs.updateSimulatorHost({ uuid: h, failCommands: [] } as never);
  t.equal((await snapshotsOf(vol.uuid)).length, 0, 'no snapshot row');
  t.equal((await zs.getVolumeSnapshotTree({ volumeUuid: vol.uuid })).inventories!.length, 0, 'no tree');
  t.equal(await psAvailable(), psBefore);
  t.equal((await zs.queryVolume({ q: [`uuid=${vol.uuid}`] })).inventories![0].installPath, vol.installPath, 'the volume stays on its file');

  const bsBefore = await bsAvailable();
  await sim(s, '/simulator/backupstorage/config', { backupStorageUuid: world.backupStorageUuid, failCommands: ['/backupstorage/download'] });
  e = await rejects(zs.createDataVolumeTemplateFromVolume({ volumeUuid: vol.uuid, name: 'broken-template' } as never));
  await sim(s, '/simulator/backupstorage/config', { backupStorageUuid: world.backupStorageUuid, failCommands: [] });
  t.equal(e.code, 'SYS.1006');
  t.equal((await zs.queryImage({ q: ['name=broken-template'] })).inventories!.length, 0, 'no image left');
  t.equal(await bsAvailable(), bsBefore);
  t.notOk(
    [...(await hostFiles())].some((f) => f.includes('templateTemporary')),
    'the temporary copy is gone',
  );
});

t.test('cascade: expunging a data volume deletes its snapshots, files and bytes', async (t) => {
  const before = await psAvailable();
  const vol = await dataVolume('doomed');
  const a = (await zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 'a' })).inventory!;
  await zs.createVolumeSnapshot({ volumeUuid: vol.uuid, name: 'b' });
  await zs.updateGlobalConfig({ category: 'volume', name: 'deletionPolicy', value: 'Direct' } as never);
  t.teardown(() => zs.updateGlobalConfig({ category: 'volume', name: 'deletionPolicy', value: 'Delay' } as never));
  await zs.deleteDataVolume({ uuid: vol.uuid });
  await until('the snapshots are gone', async () => (await snapshotsOf(vol.uuid)).length === 0);
  await until('the bytes are back', async () => (await psAvailable()) === before);
  await until('the snapshot file is deleted', async () => !(await hostFiles()).has(a.primaryStorageInstallPath!));
  t.equal((await zs.getVolumeSnapshotTree({ volumeUuid: vol.uuid })).inventories!.length, 0);
});
