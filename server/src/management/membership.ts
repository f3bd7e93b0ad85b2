// Cluster membership of a management node: its row in management_nodes, the heartbeat, and the reaping of dead
// nodes (their API jobs failed, their GC jobs released). A node that held our host:port before us — or any other
// node when the database is ours alone — is certainly dead and is reaped at start, not after a timeout.
import { hostname } from 'node:os';
import { eq, lt } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { managementNodes } from '../db/schema/index.js';

export function registerMembership(app: DomainContext): void {
  const { db, globalConfig } = app;
  globalConfig.define({
    category: 'managementServer',
    name: 'node.heartbeatInterval',
    type: 'seconds',
    defaultValue: '5',
    min: 1,
    max: 300,
    description: 'Seconds between management node heartbeats',
  });
  const heartbeatMs = () => globalConfig.getMs('managementServer', 'node.heartbeatInterval');

  const reapDeadNodes = async () => {
    const staleMs = 3 * heartbeatMs();
    await db.delete(managementNodes).where(lt(managementNodes.heartBeat, new Date(Date.now() - staleMs)));
    const live = await app.jobs.liveNodes(staleMs);
    const alive = live.includes(app.nodeUuid) ? live : [...live, app.nodeUuid];
    const failed = await app.jobs.failOrphans(alive);
    await app.gc.releaseOrphans(alive);
    if (failed) console.warn(`[jobs] marked ${failed} job(s) of stopped management nodes as failed`);
  };

  app.onJoin(async () => {
    await db.insert(managementNodes).values({ uuid: app.nodeUuid, hostName: hostname(), port: app.options.port ?? 0 });
    await reapDeadNodes();
    app.every('heartbeat', heartbeatMs, async () => {
      await db.update(managementNodes).set({ heartBeat: new Date() }).where(eq(managementNodes.uuid, app.nodeUuid));
      await reapDeadNodes();
    });
  });

  app.onListen(async (url) => {
    const port = Number(new URL(url).port);
    await db.update(managementNodes).set({ port }).where(eq(managementNodes.uuid, app.nodeUuid));
    const others = await db.select().from(managementNodes);
    const dead = others.filter((n) => n.uuid !== app.nodeUuid && (app.soleNode || (n.hostName === hostname() && n.port === port)));
    for (const n of dead) await db.delete(managementNodes).where(eq(managementNodes.uuid, n.uuid));
    if (dead.length) await reapDeadNodes();
  });

  app.onLeave(
    async () =>
      void (await db
        .delete(managementNodes)
        .where(eq(managementNodes.uuid, app.nodeUuid))
        .catch(() => undefined)),
  );
}
