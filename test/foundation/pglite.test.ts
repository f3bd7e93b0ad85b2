// Smoke run on the embedded database (what `npm start` uses with no configuration).
import t from 'tap';
import { startServer } from '../lib/harness.js';

t.test('the server works on PGlite', async (t) => {
  const s = await startServer({ pglite: true });
  t.teardown(() => s.close());
  const { inventory } = await s.client.createZone({ name: 'embedded' });
  const found = await s.client.queryZone({ q: ['name~=emb%'], replyWithCount: true });
  t.equal(found.total, 1);
  t.equal(found.inventories![0].uuid, inventory.uuid);
  t.equal((await s.client.getVersion()).version, '1.1.0');
});
