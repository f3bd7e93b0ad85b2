// Two management nodes on one database: both are listed, and a setting changed through one applies on the other
// (cross-node events over PostgreSQL LISTEN/NOTIFY).
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
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
