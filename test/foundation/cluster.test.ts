// Two management nodes on one database: both are listed, and a setting changed through one applies on the other
// (cross-node events over PostgreSQL LISTEN/NOTIFY).
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { currentSignal } from '../../server/src/core/context.js';
import { startServer } from '../lib/harness.js';

t.test('management nodes share settings and see each other', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const peer = await s.startPeer();
  const nodes = await s.client.queryManagementNode({});
  t.same(nodes.inventories!.map((n) => n.uuid).sort(), [s.app.nodeUuid, peer.nodeUuid].sort());
  t.equal(peer.globalConfig.get('apiTimeout', 'CreateZone'), '30m');
  await s.client.updateGlobalConfig({ category: 'apiTimeout', name: 'CreateZone', value: '3h' });
  const until = Date.now() + 5000;
  while (peer.globalConfig.get('apiTimeout', 'CreateZone') !== '3h' && Date.now() < until) await sleep(20);
  t.equal(peer.globalConfig.get('apiTimeout', 'CreateZone'), '3h', 'the other node applied the change');
  let seen = 0;
  peer.events.on('host.deleted', () => void seen++);
  s.app.events.emit('host.deleted', { hostUuid: 'h1' });
  while (seen === 0 && Date.now() < until + 5000) await sleep(20);
  t.equal(seen, 1, 'cluster-wide events reach the other node exactly once');
});

t.test('closing a node lets its running periodic tick finish on the database first', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const peer = await s.startPeer();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let ticks = 0;
  let outcome: unknown;
  let signal: AbortSignal | undefined;
  peer.every(
    'test-held-tick',
    () => 5,
    async () => {
      if (++ticks > 1) return;
      signal = currentSignal();
      await held;
      outcome = await peer.db.execute(sql`SELECT 1 AS one`).then(
        () => 'queried',
        (e) => (e as Error).message,
      );
    },
  );
  const until = Date.now() + 10_000;
  while (ticks === 0 && Date.now() < until) await sleep(10);
  t.equal(ticks, 1, 'the tick is running');
  let closed = false;
  const closing = peer.close().then(() => void (closed = true));
  // Closing must not get past the tick while it is held (a window to look in: it can only pass the check).
  await Promise.race([closing, sleep(300)]);
  t.notOk(closed, 'close waits for the running tick');
  t.equal(signal?.aborted, true, "… having aborted the tick's signal (its agent calls and waits stop)");
  release();
  await closing;
  t.equal(outcome, 'queried', 'the tick still had the database');
  t.equal(ticks, 1, 'no tick after close');
});
