// The VM reservation has two paths (vm/allocation/host-allocator.ts): a one-statement SQL fast path that picks and
// reserves, and the TypeScript pass (candidatesFor + order) that runs when the fast path finds nothing and explains
// why. They must agree on which hosts qualify: over generated situations (host state/status/capacity/VM count,
// cluster and zone state, L2 attachment, primary storage state/status/free bytes, the image's zones) and generated
// requirements (scope, avoided and preferred hosts, L3s, existing volumes' storage, new bytes, image, strategy),
// the fast path finds a host exactly when the slow path has candidates, the host is one of them, a qualifying
// preferred host wins, and LeastVmPreferred takes a host with the fewest VMs. The fast path's reservation is
// rolled back each time, so every situation is read as generated.
import t from 'tap';
import { eq } from 'drizzle-orm';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { backupStorageZoneRefs, clusters, hosts, l2ClusterRefs, primaryStorage, zones } from '../../server/src/db/schema/index.js';
import { candidatesFor, reserveHostQuery, type HostRequirement } from '../../server/src/vm/allocation/host-allocator.js';

const GiB = 1024 ** 3;
const ROUNDS = 150;

// A small seeded generator: a failure names its seed and round, and replays.
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32;
  return {
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    subset: <T>(xs: readonly T[], p: number) => xs.filter(() => next() < p),
  };
}

class Rollback extends Error {}

t.test('the SQL fast path and the TypeScript pass agree on which hosts qualify', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const w = await buildWorld(s.client, { hosts: 5, virtualRouter: false });
  const db = s.app.db;
  const ctx = s.app.contextOf('vm');
  const seed = Number(process.env.ALLOCATION_SEED ?? Date.now() % 100000);
  const r = rng(seed);
  t.comment(`seed ${seed} (ALLOCATION_SEED replays it)`);

  let agreedWithHost = 0;
  let agreedWithout = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const where = `seed ${seed}, round ${round}`;
    // The situation.
    for (const uuid of w.hostUuids) {
      await db
        .update(hosts)
        .set({
          state: r.chance(0.8) ? 'Enabled' : r.pick(['Disabled', 'Maintenance', 'PreMaintenance']),
          status: r.chance(0.8) ? 'Connected' : r.pick(['Disconnected', 'Connecting']),
          availableCpuCapacity: r.int(0, 8),
          availableMemoryCapacity: r.int(0, 8) * GiB,
          reservedVmCount: r.int(0, 4),
        })
        .where(eq(hosts.uuid, uuid));
    }
    await db
      .update(clusters)
      .set({ state: r.chance(0.9) ? 'Enabled' : 'Disabled' })
      .where(eq(clusters.uuid, w.clusterUuid));
    await db
      .update(zones)
      .set({ state: r.chance(0.9) ? 'Enabled' : 'Disabled' })
      .where(eq(zones.uuid, w.zoneUuid));
    await db
      .update(primaryStorage)
      .set({
        state: r.chance(0.85) ? 'Enabled' : r.pick(['Disabled', 'Maintenance']),
        status: r.chance(0.85) ? 'Connected' : 'Disconnected',
        availableCapacity: r.int(0, 100) * GiB,
      })
      .where(eq(primaryStorage.uuid, w.primaryStorageUuid));
    await db.delete(l2ClusterRefs).where(eq(l2ClusterRefs.l2NetworkUuid, w.l2NetworkUuid));
    if (r.chance(0.85)) await db.insert(l2ClusterRefs).values({ l2NetworkUuid: w.l2NetworkUuid, clusterUuid: w.clusterUuid });
    await db.delete(backupStorageZoneRefs).where(eq(backupStorageZoneRefs.backupStorageUuid, w.backupStorageUuid));
    if (r.chance(0.85)) await db.insert(backupStorageZoneRefs).values({ backupStorageUuid: w.backupStorageUuid, zoneUuid: w.zoneUuid });

    // The requirement.
    const scope = r.pick(['none', 'none', 'zone', 'cluster', 'host'] as const);
    const req: HostRequirement = {
      vmUuid: `vm-${round}`,
      cpuNum: r.int(1, 6),
      memorySize: r.int(1, 6) * GiB,
      l3NetworkUuids: r.chance(0.8) ? [w.l3NetworkUuid] : [],
      imageUuid: r.chance(0.7) ? w.imageUuid : undefined,
      zoneUuid: scope === 'zone' ? w.zoneUuid : undefined,
      clusterUuid: scope === 'cluster' ? w.clusterUuid : undefined,
      hostUuid: scope === 'host' ? r.pick(w.hostUuids) : undefined,
      primaryStorageUuids: r.chance(0.3) ? [w.primaryStorageUuid] : [],
      newVolumeBytes: r.chance(0.7) ? r.int(1, 80) * GiB : 0,
      avoidHostUuids: r.subset(w.hostUuids, 0.15),
      preferredHostUuid: r.chance(0.3) ? r.pick(w.hostUuids) : undefined,
      strategy: r.pick(['LeastVmPreferredHostAllocatorStrategy', 'DefaultHostAllocatorStrategy', null]),
    };

    const { candidates } = await candidatesFor(ctx, req);
    let fast: typeof hosts.$inferSelect | undefined;
    await db
      .transaction(async (tx) => {
        [fast] = await reserveHostQuery(tx, req);
        throw new Rollback();
      })
      .catch((e) => {
        if (!(e instanceof Rollback)) throw e;
      });

    const ids = candidates.map((h) => h.uuid);
    if (!fast) {
      if (ids.length) t.fail(`${where}: the fast path found no host, the slow path has ${ids.join(', ')} (${JSON.stringify(req)})`);
      else agreedWithout++;
      continue;
    }
    if (!ids.includes(fast.uuid)) {
      t.fail(`${where}: the fast path took host ${fast.uuid}, which the slow path does not qualify (${JSON.stringify(req)})`);
      continue;
    }
    if (req.preferredHostUuid && ids.includes(req.preferredHostUuid)) {
      t.equal(fast.uuid, req.preferredHostUuid, `${where}: a qualifying preferred host wins`);
    } else if ((req.strategy ?? 'LeastVmPreferredHostAllocatorStrategy') === 'LeastVmPreferredHostAllocatorStrategy') {
      const fewest = Math.min(...candidates.map((h) => h.reservedVmCount));
      const before = candidates.find((h) => h.uuid === fast!.uuid)!.reservedVmCount;
      t.equal(before, fewest, `${where}: LeastVmPreferred takes a host with the fewest VMs`);
    }
    agreedWithHost++;
  }
  t.comment(`${agreedWithHost} situations with a host, ${agreedWithout} without`);
  // The generator must reach both outcomes, or the comparison proves little.
  t.ok(agreedWithHost >= 10, 'enough situations where a host qualifies');
  t.ok(agreedWithout >= 10, 'enough situations where none does');
});
