// Primary storage, backup storage and images through the SDK on real PostgreSQL and the simulator agent: each API's
// lifecycle and validation, local storage capacity from the hosts' agents, AddImage with visible progress, failed
// downloads, deletion policies, the deletion cascade, and primary storage reservation under concurrency.
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { AGENT_SECRET, startServer } from '../lib/harness.js';
import { startAgent } from '../../agents/src/index.js';
import { ZStackError } from '../../sdk/src/index.js';
import { ApiError } from '../../server/src/core/errors.js';
import { newUuid } from '../../server/src/core/ids.js';
import type { AgentPath, AgentRequest } from '../../server/src/agent-client/index.js';
import { backupStorage, backupStorageZoneRefs, images, primaryStorage } from '../../server/src/db/schema/index.js';
import { credentialVault } from '../../server/src/core/credentials.js';
import { freePort } from '../lib/sshd.js';
import { fails } from '../lib/fails.js';

const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

/**
 * Reads `read` until `done` holds of it (an asynchronous effect has landed) or `timeoutMs` has passed, and returns the
 * last value read, so that the caller's assertion reports what was there when it did not land.
 */
async function eventually<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('primary storage, backup storage and images', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  /** An SFTP backup storage row as AddSftpBackupStorage leaves it, without deploying (no sshd in this test). */
  const sftpRow = async (name: string, url: string, password = 'p') => {
    const uuid = newUuid();
    const credential = credentialVault(s.app.contextOf('host')).seal({ password });
    await s.app.db
      .insert(backupStorage)
      .values({ uuid, name, url, type: 'SftpBackupStorage', status: 'Disconnected', hostname: '127.0.0.1', username: 'root', sshPort: 22, credential });
    return uuid;
  };
  const sim = <P extends AgentPath>(path: P, body: AgentRequest<P>) => s.app.agents.call(s.sim.url, path, body);
  const { inventory: zone } = await zs.createZone({ name: 'zone1' });
  const { inventory: otherZone } = await zs.createZone({ name: 'zone2' });
  const { inventory: cluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'c1', hypervisorType: 'Simulator' });

  t.test('simulated primary storage', async (t) => {
    const { inventory: ps } = await zs.addSimulatorPrimaryStorage({
      name: 'ps1',
      zoneUuid: zone.uuid,
      url: '/sim/ps1',
      totalCapacity: 100 * GiB,
      availableCapacity: 80 * GiB,
    });
    t.match(ps, {
      name: 'ps1',
      zoneUuid: zone.uuid,
      url: '/sim/ps1',
      type: 'SimulatorPrimaryStorage',
      state: 'Enabled',
      status: 'Connected',
      totalCapacity: 100 * GiB,
      availableCapacity: 80 * GiB,
      totalPhysicalCapacity: 100 * GiB,
      attachedClusterUuids: [],
    });
    const { inventory: dflt } = await zs.addSimulatorPrimaryStorage({ name: 'ps-default', zoneUuid: zone.uuid, url: 'anything' });
    t.equal(dflt.totalCapacity, 10 * TiB);
    t.equal(dflt.availableCapacity, 10 * TiB);

    await fails(
      t,
      zs.addSimulatorPrimaryStorage({ name: 'x', zoneUuid: zone.uuid, url: '/x', totalCapacity: 1, availableCapacity: 2 }),
      400,
      'SYS.1007',
      /availableCapacity/,
    );
    await fails(t, zs.addSimulatorPrimaryStorage({ name: 'x', zoneUuid: newUuid(), url: '/x' }), 404, 'SYS.1003', /zoneUuid/);
    await fails(t, zs.addSimulatorPrimaryStorage({ name: 'x', zoneUuid: zone.uuid } as never), 400, 'SYS.1007', /url/);

    const attached = await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
    t.same(attached.inventory.attachedClusterUuids, [cluster.uuid]);
    t.same(
      (await s.app.services.primaryStorage.attachedToCluster(cluster.uuid)).map((p) => p.uuid),
      [ps.uuid],
    );
    await fails(t, zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid }), 400, 'SYS.1007', /already attached/);
    const { inventory: far } = await zs.addSimulatorPrimaryStorage({ name: 'far', zoneUuid: otherZone.uuid, url: '/far' });
    await fails(t, zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: far.uuid }), 400, 'SYS.1007', /zone/);
    await fails(t, zs.attachPrimaryStorageToCluster({ clusterUuid: newUuid(), primaryStorageUuid: ps.uuid }), 404, 'SYS.1003', /clusterUuid/);
    await fails(t, zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: newUuid() }), 404, 'SYS.1003', /primaryStorageUuid/);
    await fails(t, zs.detachPrimaryStorageFromCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: dflt.uuid }), 400, 'SYS.1007', /not attached/);
    t.same(
      (await zs.queryPrimaryStorage({ q: ['type=SimulatorPrimaryStorage', `zoneUuid=${zone.uuid}`], sort: 'createDate' })).inventories!.map((p) => p.name),
      ['ps1', 'ps-default'],
    );

    await fails(t, zs.deletePrimaryStorage({ uuid: ps.uuid }), 503, 'SYS.1004', /attached to cluster/);
    const detached = await zs.detachPrimaryStorageFromCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
    t.same(detached.inventory.attachedClusterUuids, []);
    for (const uuid of [ps.uuid, dflt.uuid, far.uuid]) t.same(await zs.deletePrimaryStorage({ uuid }), { success: true });
    t.same(await zs.deletePrimaryStorage({ uuid: ps.uuid }), { success: true }, 'missing = success');
    t.same((await zs.queryPrimaryStorage({})).inventories, []);
  });

  t.test('Enforcing deletes attached primary storage', async (t) => {
    const { inventory: ps } = await zs.addSimulatorPrimaryStorage({ name: 'ps-e', zoneUuid: zone.uuid, url: '/e' });
    await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
    t.same(await zs.deletePrimaryStorage({ uuid: ps.uuid, deleteMode: 'Enforcing' }), { success: true });
    t.same(await s.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, ps.uuid)), []);
  });

  t.test('primary storage reservation under concurrency', async (t) => {
    const { inventory: ps } = await zs.addSimulatorPrimaryStorage({ name: 'ps-r', zoneUuid: zone.uuid, url: '/r', totalCapacity: 10 * GiB });
    const svc = s.app.services.primaryStorage;
    const got = await Promise.all(Array.from({ length: 50 }, () => s.app.db.transaction((tx) => svc.reserve(tx, ps.uuid, 3 * GiB))));
    t.equal(got.filter(Boolean).length, 3, 'exactly what fits');
    t.equal((await svc.get(ps.uuid))!.availableCapacity, GiB);
    await Promise.all(got.filter(Boolean).map(() => s.app.db.transaction((tx) => svc.release(tx, ps.uuid, 3 * GiB))));
    t.equal((await svc.get(ps.uuid))!.availableCapacity, 10 * GiB);
    await svc.release(s.app.db, ps.uuid, GiB);
    t.equal((await svc.get(ps.uuid))!.availableCapacity, 10 * GiB, 'never above the total');
    await zs.deletePrimaryStorage({ uuid: ps.uuid });
  });

  t.test('local primary storage is the sum of its connected hosts', async (t) => {
    const { inventory: ps } = await zs.addLocalPrimaryStorage({ name: 'local', zoneUuid: zone.uuid, url: '/zstack_ps' });
    t.match(ps, { type: 'LocalStorage', mountPath: '/zstack_ps', totalCapacity: 0, status: 'Connected' });
    await fails(t, zs.addLocalPrimaryStorage({ name: 'x', zoneUuid: zone.uuid, url: 'relative/dir' }), 400, 'SYS.1007', /url/);

    const h1 = (await zs.addSimulatorHost({ name: 'lh1', managementIp: '10.0.0.1', clusterUuid: cluster.uuid })).inventory;
    await sim('/simulator/hosts/config', { hostUuid: h1.uuid, primaryStorageCapacity: 2 * TiB });
    const attached = await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
    t.match(attached.inventory, { totalCapacity: 2 * TiB, availableCapacity: 2 * TiB, totalPhysicalCapacity: 2 * TiB });

    const svc = s.app.services.primaryStorage;
    t.ok(await svc.reserve(s.app.db, ps.uuid, 100 * GiB));
    // A second host adds its disk (its default 10 TiB); what volumes hold stays held.
    const h2 = (await zs.addSimulatorHost({ name: 'lh2', managementIp: '10.0.0.2', clusterUuid: cluster.uuid })).inventory;
    let row = (await svc.get(ps.uuid))!;
    t.equal(row.totalCapacity, 12 * TiB);
    t.equal(row.availableCapacity, 12 * TiB - 100 * GiB);
    await zs.deleteHost({ uuid: h2.uuid });
    // host.deleted is handled detached (after DeleteHost replied): poll until the disk is taken away, generously.
    row = await eventually(
      async () => (await svc.get(ps.uuid))!,
      (r) => r.totalCapacity === 2 * TiB,
    );
    t.equal(row.totalCapacity, 2 * TiB);
    await zs.detachPrimaryStorageFromCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
    t.equal((await svc.get(ps.uuid))!.totalCapacity, 0);
    await zs.deletePrimaryStorage({ uuid: ps.uuid });
    await zs.deleteHost({ uuid: h1.uuid });
  });

  t.test('backup storage', async (t) => {
    const { inventory: bs } = await zs.addSimulatorBackupStorage({ name: 'bs1', url: '/sim/bs1', totalCapacity: 500 * GiB });
    t.match(bs, {
      name: 'bs1',
      url: '/sim/bs1',
      type: 'SimulatorBackupStorage',
      state: 'Enabled',
      status: 'Connected',
      totalCapacity: 500 * GiB,
      availableCapacity: 500 * GiB,
      attachedZoneUuids: [],
    });
    t.notOk('hostname' in bs);
    const { inventory: small } = await zs.addSimulatorBackupStorage({ name: 'bs-small', url: 'label', totalCapacity: 10 * GiB, availableCapacity: 4 * GiB });
    t.equal(small.availableCapacity, 4 * GiB);
    await fails(t, zs.addSimulatorBackupStorage({ name: 'x', url: '/x', totalCapacity: 1, availableCapacity: 2 }), 400, 'SYS.1007', /availableCapacity/);
    await fails(t, zs.addSimulatorBackupStorage({ name: 'x' } as never), 400, 'SYS.1007', /url/);

    const z = await zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid });
    t.same(z.inventory.attachedZoneUuids, [zone.uuid]);
    await fails(t, zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid }), 400, 'SYS.1007', /already attached/);
    await fails(t, zs.attachBackupStorageToZone({ zoneUuid: newUuid(), backupStorageUuid: bs.uuid }), 404, 'SYS.1003', /zoneUuid/);
    await fails(t, zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: newUuid() }), 404, 'SYS.1003', /backupStorageUuid/);
    await fails(t, zs.detachBackupStorageFromZone({ zoneUuid: otherZone.uuid, backupStorageUuid: bs.uuid }), 400, 'SYS.1007', /not attached/);
    await zs.attachBackupStorageToZone({ zoneUuid: otherZone.uuid, backupStorageUuid: bs.uuid });
    const d = await zs.detachBackupStorageFromZone({ zoneUuid: otherZone.uuid, backupStorageUuid: bs.uuid });
    t.same(d.inventory.attachedZoneUuids, [zone.uuid]);
    t.same(
      (await zs.queryBackupStorage({ q: ['status=Connected'], sort: 'createDate' })).inventories!.map((b) => b.name),
      ['bs1', 'bs-small'],
    );

    // SFTP: the agent is deployed over SSH (test/kvm does it against a real sshd); nothing listens here → HOST.1003
    // naming the connect task, and the backup storage is removed again.
    const closed = await freePort();
    await fails(
      t,
      zs.addSftpBackupStorage({ name: 'sftp', hostname: '127.0.0.1', username: 'root', password: 'hunter2', sshPort: closed, url: '/zstack_bs' }),
      503,
      'HOST.1003',
      /task connect failed on host 127\.0\.0\.1: .*connection refused/,
    );
    t.same((await zs.queryBackupStorage({ q: ['name=sftp'] })).inventories, [], 'nothing left behind');
    const sftp = { uuid: await sftpRow('sftp', '/zstack_bs', 'hunter2') };
    const [row] = await s.app.db.select().from(backupStorage).where(eq(backupStorage.uuid, sftp.uuid));
    t.ok(row.credential && !row.credential.includes('hunter2'), 'the password is sealed at rest');
    const queried = (await zs.queryBackupStorage({ q: [`uuid=${sftp.uuid}`] })).inventories![0] as Record<string, unknown>;
    t.match(queried, { type: 'SftpBackupStorage', status: 'Disconnected', hostname: '127.0.0.1', username: 'root', sshPort: 22 });
    t.notOk('password' in queried || 'credential' in queried);
    await fails(t, zs.queryBackupStorage({ q: ['credential=x'] }), 400, 'SYS.1007', /credential/);
    await fails(t, zs.addSftpBackupStorage({ name: 'x', hostname: 'h', username: 'root', password: 'p', url: 'relative' }), 400, 'SYS.1007', /url/);

    for (const uuid of [small.uuid, sftp.uuid]) t.same(await zs.deleteBackupStorage({ uuid }), { success: true });
    t.same(await zs.deleteBackupStorage({ uuid: sftp.uuid }), { success: true }, 'missing = success');
  });

  t.test('images', async (t) => {
    const [bs] = (await zs.queryBackupStorage({ q: ['name=bs1'] })).inventories!;
    const { inventory: bs2 } = await zs.addSimulatorBackupStorage({ name: 'bs2', url: '/sim/bs2' });

    t.test('download progress is visible, then Ready', async (t) => {
      const url = `http://download.zstack.org/templates/ttylinux.qcow2?size=${GiB}&durationMs=2000`;
      const job = zs.addImage({ name: 'ttylinux', url, backupStorageUuids: [bs.uuid, bs2.uuid], platform: 'Paravirtualization' });
      const seen = new Set<string>();
      let downloading: Record<string, unknown> | undefined;
      for (let i = 0; i < 200; i++) {
        const [img] = (await zs.queryImage({ q: ['name=ttylinux'] })).inventories!;
        if (img?.status === 'Downloading') {
          downloading = img as Record<string, unknown>;
          if (img.progress) seen.add(img.progress);
        }
        if (img?.status === 'Ready') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const { inventory: img } = await job;
      t.ok(downloading, 'QueryImage shows the image Downloading');
      t.ok(
        [...seen].some((p) => p !== '0%' && p !== '100%'),
        `intermediate progress seen: ${[...seen].join(', ')}`,
      );
      t.ok([...seen].every((p) => /^\d{1,3}%$/.test(p)));
      t.match(img, { name: 'ttylinux', status: 'Ready', size: GiB, actualSize: GiB, format: 'qcow2', mediaType: 'RootVolumeTemplate', platform: 'Other', url });
      t.notOk('progress' in img, 'no progress once Ready');
      t.match(img.md5Sum, /^[0-9a-f]{32}$/);
      t.same(
        img.backupStorageRefs.map((r) => [r.backupStorageUuid, r.status]).sort(),
        [
          [bs.uuid, 'Ready'],
          [bs2.uuid, 'Ready'],
        ].sort(),
      );
      t.match(
        img.backupStorageRefs.find((r) => r.backupStorageUuid === bs.uuid)!.installPath,
        new RegExp(`^/sim/bs1/rootVolumeTemplates/${img.uuid}/${img.uuid}\\.qcow2$`),
      );
      const [after] = (await zs.queryBackupStorage({ q: [`uuid=${bs.uuid}`] })).inventories!;
      t.equal(after.availableCapacity, 500 * GiB - GiB, 'the capacity riding on the reply is recorded');
      t.equal((await s.app.services.images.get(img.uuid))?.status, 'Ready');
    });

    t.test('a local file is downloaded for real', async (t) => {
      const file = join(s.dataDir, 'tiny.raw');
      const content = Buffer.alloc(123_456, 7);
      writeFileSync(file, content);
      const { inventory: img } = await zs.addImage({ name: 'tiny', url: file, format: 'raw', backupStorageUuids: [bs2.uuid] });
      t.match(img, { status: 'Ready', url: `file://${file}`, size: content.length, format: 'raw', md5Sum: createHash('md5').update(content).digest('hex') });
      const { inventory: iso } = await zs.addImage({ name: 'iso', url: `file://${file}`, mediaType: 'ISO', format: 'qcow2', backupStorageUuids: [bs2.uuid] });
      t.equal(iso.format, 'iso', 'ISO images are always iso');
      t.match(iso.backupStorageRefs[0].installPath, /\/iso\//);
    });

    t.test('failures', async (t) => {
      const job = await fails(
        t,
        zs.addImage({ name: 'broken', url: 'http://example.com/x.qcow2?fail=true&durationMs=100', backupStorageUuids: [bs2.uuid] }),
        503,
        'SYS.1006',
        /simulated download failure/,
      );
      t.ok(job?.errorCode.cause, "the agent's error is the cause");
      const [broken] = (await zs.queryImage({ q: ['name=broken'] })).inventories!;
      t.match(broken, { status: 'Error', backupStorageRefs: [] });

      // One backup storage refuses: the image is Ready on the other only.
      await sim('/simulator/backupstorage/config', { backupStorageUuid: bs2.uuid, failCommands: ['/backupstorage/download'] });
      const { inventory: half } = await zs.addImage({
        name: 'half',
        url: 'http://example.com/half.qcow2?durationMs=50',
        backupStorageUuids: [bs.uuid, bs2.uuid],
      });
      t.same(
        half.backupStorageRefs.map((r) => r.backupStorageUuid),
        [bs.uuid],
      );
      await sim('/simulator/backupstorage/config', { backupStorageUuid: bs2.uuid, failCommands: [] });

      await fails(t, zs.addImage({ name: 'x', url: 'http://x/y', backupStorageUuids: [newUuid()] }), 404, 'SYS.1003', /backupStorageUuids/);
      await fails(t, zs.addImage({ name: 'x', url: 'gopher://x/y', backupStorageUuids: [bs.uuid] }), 400, 'SYS.1007', /url/);
      await fails(t, zs.addImage({ name: 'x', url: 'http://x/y', backupStorageUuids: [] }), 400, 'SYS.1007', /backupStorageUuids/);
      await fails(t, zs.addImage({ name: 'x', url: 'http://x/y', backupStorageUuids: [bs.uuid], mediaType: 'Floppy' } as never), 400, 'SYS.1007', /mediaType/);
      await fails(t, zs.addImage({ name: 'x', url: 'http://x/y', backupStorageUuids: [bs.uuid], format: 'vhd' } as never), 400, 'SYS.1007', /format/);
      const sftp = { uuid: await sftpRow('sftp', '/bs') };
      await fails(t, zs.addImage({ name: 'x', url: 'http://x/y', backupStorageUuids: [sftp.uuid] }), 409, 'SYS.1010', /Disconnected/);
      await s.app.db.update(backupStorage).set({ status: 'Connected', availableCapacity: GiB }).where(eq(backupStorage.uuid, sftp.uuid));
      await fails(t, zs.addImage({ name: 'x', url: 'ftp://x/y', backupStorageUuids: [sftp.uuid] }), 400, 'SYS.1007', /url.*ftp/);
      await zs.deleteBackupStorage({ uuid: sftp.uuid });
      t.same((await zs.queryImage({ q: ['name=x'] })).inventories, [], 'refused images leave nothing');
    });

    t.test('delete (Delay), expunge, Direct, and backup storage deletion', async (t) => {
      const add = (name: string, on: string[]) =>
        zs.addImage({ name, url: `http://example.com/${name}.qcow2?durationMs=10&size=1000`, backupStorageUuids: on });
      const { inventory: a } = await add('del-a', [bs.uuid, bs2.uuid]);
      await fails(t, zs.expungeImage({ imageUuid: a.uuid }), 409, 'SYS.1005', /Ready, not Deleted/);
      await zs.deleteImage({ uuid: a.uuid, backupStorageUuids: [bs2.uuid] });
      let [row] = (await zs.queryImage({ q: [`uuid=${a.uuid}`] })).inventories!;
      t.equal(row.status, 'Ready', 'still on bs1');
      t.same(row.backupStorageRefs.map((r) => `${r.backupStorageUuid === bs.uuid ? 'bs1' : 'bs2'}:${r.status}`).sort(), ['bs1:Ready', 'bs2:Deleted']);
      await zs.deleteImage({ uuid: a.uuid });
      [row] = (await zs.queryImage({ q: [`uuid=${a.uuid}`] })).inventories!;
      t.equal(row.status, 'Deleted', 'Delay keeps it as Deleted');
      await fails(t, zs.expungeImage({ imageUuid: newUuid() }), 404, 'SYS.1003', /imageUuid/);
      await sim('/simulator/backupstorage/records', { backupStorageUuid: bs.uuid, clear: true });
      t.same(await zs.expungeImage({ imageUuid: a.uuid, backupStorageUuids: [bs.uuid] }), { success: true });
      const records = await sim('/simulator/backupstorage/records', { backupStorageUuid: bs.uuid });
      t.ok(
        records.records.some((r) => r.path === '/backupstorage/delete'),
        'the file was deleted on the agent',
      );
      t.equal((await zs.queryImage({ q: [`uuid=${a.uuid}`] })).inventories!.length, 1, 'still held by bs2 (Deleted)');
      await zs.expungeImage({ imageUuid: a.uuid });
      t.same((await zs.queryImage({ q: [`uuid=${a.uuid}`] })).inventories, [], 'gone once no backup storage holds it');
      t.same(await zs.deleteImage({ uuid: a.uuid }), { success: true }, 'missing = success');

      await zs.updateGlobalConfig({ category: 'image', name: 'deletionPolicy', value: 'Direct' });
      const { inventory: b } = await add('del-b', [bs.uuid]);
      await zs.deleteImage({ uuid: b.uuid });
      t.same((await zs.queryImage({ q: [`uuid=${b.uuid}`] })).inventories, [], 'Direct removes it at once');
      await zs.updateGlobalConfig({ category: 'image', name: 'deletionPolicy', value: 'Delay' });
      await fails(t, zs.updateGlobalConfig({ category: 'image', name: 'deletionPolicy', value: 'Sometimes' }), 400, 'SYS.1007', /Direct, Delay, Never/);

      // Deleting backup storage takes the images kept only there.
      const { inventory: only } = await add('only-bs2', [bs2.uuid]);
      const { inventory: both } = await add('both', [bs.uuid, bs2.uuid]);
      t.same(await zs.deleteBackupStorage({ uuid: bs2.uuid }), { success: true });
      t.same((await zs.queryImage({ q: [`uuid=${only.uuid}`] })).inventories, []);
      const [kept] = (await zs.queryImage({ q: [`uuid=${both.uuid}`] })).inventories!;
      t.same(
        kept.backupStorageRefs.map((r) => r.backupStorageUuid),
        [bs.uuid],
      );
    });
  });

  t.test('SFTP backup storage served by a real backup-storage agent', async (t) => {
    const root = join(s.dataDir, 'real-bs');
    const agent = await startAgent({ kind: 'backup-storage', port: 0, secret: AGENT_SECRET, storageRoot: root });
    t.teardown(() => agent.close());
    // The row as a deploy leaves it, pointing at an agent started here (test/kvm deploys one over SSH for real).
    const bs = { uuid: await sftpRow('real', `${root}/store`) };
    await s.app.db.update(backupStorage).set({ agentUrl: agent.url }).where(eq(backupStorage.uuid, bs.uuid));
    const connected = await s.app.services.backupStorage.connect(bs.uuid);
    t.equal(connected.status, 'Connected');
    t.ok(connected.totalCapacity > 0, 'capacity of the real file system');

    const file = join(s.dataDir, 'real.qcow2');
    const content = Buffer.alloc(200_000, 3);
    writeFileSync(file, content);
    const { inventory: img } = await zs.addImage({ name: 'real', url: `file://${file}`, backupStorageUuids: [bs.uuid] });
    t.match(img, { status: 'Ready', size: content.length, md5Sum: createHash('md5').update(content).digest('hex') });
    const installPath = img.backupStorageRefs[0].installPath!;
    t.ok(installPath.startsWith(`${root}/store/rootVolumeTemplates/${img.uuid}/`), installPath);
    t.same(readFileSync(installPath), content, 'the file is on the backup storage');
    await fails(t, zs.addImage({ name: 'x', url: 'http://example.com/x.qcow2', backupStorageUuids: [bs.uuid] }), 503, 'SYS.1006', /cannot fetch|download/);

    await zs.updateGlobalConfig({ category: 'image', name: 'deletionPolicy', value: 'Direct' });
    await zs.deleteImage({ uuid: img.uuid });
    await zs.updateGlobalConfig({ category: 'image', name: 'deletionPolicy', value: 'Delay' });
    t.notOk(existsSync(installPath), 'Direct deletion removed the file');
    await zs.deleteBackupStorage({ uuid: bs.uuid });
  });

  t.test('deleting a zone takes its primary storage and backup storage attachments', async (t) => {
    const { inventory: z } = await zs.createZone({ name: 'doomed' });
    const { inventory: ps } = await zs.addSimulatorPrimaryStorage({ name: 'dps', zoneUuid: z.uuid, url: '/d' });
    const { inventory: c } = await zs.createCluster({ zoneUuid: z.uuid, name: 'dc', hypervisorType: 'Simulator' });
    await zs.attachPrimaryStorageToCluster({ clusterUuid: c.uuid, primaryStorageUuid: ps.uuid });
    const { inventory: bs } = await zs.addSimulatorBackupStorage({ name: 'dbs', url: '/dbs' });
    await zs.attachBackupStorageToZone({ zoneUuid: z.uuid, backupStorageUuid: bs.uuid });
    t.same(await zs.deleteZone({ uuid: z.uuid }), { success: true });
    t.same(await s.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, ps.uuid)), []);
    t.same(await s.app.db.select().from(backupStorageZoneRefs).where(eq(backupStorageZoneRefs.backupStorageUuid, bs.uuid)), []);
    t.equal((await zs.queryBackupStorage({ q: [`uuid=${bs.uuid}`] })).inventories![0].attachedZoneUuids.length, 0, 'the backup storage itself stays');
    t.ok((await s.app.db.select().from(images)).length >= 0);
  });

  t.test('expanded queries', async (t) => {
    const [bs] = (await zs.queryBackupStorage({ q: ['name=bs1'] })).inventories!;
    t.ok((await zs.queryImage({ q: [`backupStorage.uuid=${bs.uuid}`] })).inventories!.length > 0);
    t.ok((await zs.queryBackupStorage({ q: ['zone.name=zone1'] })).inventories!.length > 0);
    t.same((await zs.queryPrimaryStorage({ q: ['cluster.name=c1'] })).inventories, []);
  });
});
