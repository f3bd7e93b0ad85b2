// The one-statement VM reservation (vm/create.ts reserveInOneStatement) runs on every creation as a prepared
// statement, so PostgreSQL settles on its generic plan (no parameter values known). That plan must not grow with
// the cloud: with thousands of hosts, the host row it updates is fetched by its key, never found by a scan of every
// host (a hash join over `IN (sub-select)` did: 0.4-1 ms of PostgreSQL's CPU per creation at 1,000 hosts).
import t from 'tap';
import pg from 'pg';
import { createRequire } from 'node:module';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';

const EXTRA_ROWS = 2000;

t.test("the reservation's generic plan reads no table whose size grows with the cloud", async (t) => {
  // The statement as the server sends it, caught on its way to PostgreSQL (the server's connections wrap pg's own
  // query when they open: the wrapper goes in first).
  const query = pg.Client.prototype.query;
  let catching = false;
  let caught: { text: string; values: unknown[] } | undefined;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const c = args[0] as { text?: string; values?: unknown[] } | string;
    if (catching && typeof c === 'object' && c?.text?.startsWith('WITH h AS (update "hosts"'))
      caught ??= { text: c.text, values: c.values ?? (args[1] as unknown[]) ?? [] };
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  t.teardown(() => void (pg.Client.prototype.query = query));
  const s = await startServer();
  t.teardown(() => s.close());
  const w = await buildWorld(s.client, { hosts: 2, virtualRouter: false });
  const admin = new pg.Client({ connectionString: s.databaseUrl! }); // startServer() runs on PostgreSQL
  await admin.connect();
  t.teardown(() => admin.end());

  catching = true;
  await s.client.createVmInstance({ name: 'planned', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] });
  catching = false;
  // Then thousands of hosts in the cluster and of used addresses on the L3 (copies of the real ones, as statistics).
  await admin.query(
    `INSERT INTO hosts SELECT (jsonb_populate_record(NULL::hosts, to_jsonb(h) || jsonb_build_object(
       'uuid', md5('extra-host-' || g), 'name', 'extra-' || g, 'management_ip', '10.200.' || (g / 250) || '.' || (g % 250 + 1)))).*
       FROM hosts h, generate_series(1, $1) g WHERE h.uuid = $2`,
    [EXTRA_ROWS, w.hostUuids[0]],
  );
  await admin.query(
    `INSERT INTO used_ips SELECT (jsonb_populate_record(NULL::used_ips, to_jsonb(u) || jsonb_build_object(
       'uuid', md5('extra-ip-' || g), 'ip_in_long', 4000000000 + g, 'vm_nic_uuid', NULL))).*
       FROM used_ips u, generate_series(1, $1) g WHERE u.l3_network_uuid = $2 AND u.used_for = 'UserVm'`,
    [EXTRA_ROWS, w.l3NetworkUuid],
  );
  await admin.query('ANALYZE');
  if (!caught) return t.fail('the creation did not run the one-statement reservation');

  // Its generic plan: what every pool connection uses after its first executions.
  await admin.query(`SET plan_cache_mode = force_generic_plan`);
  await admin.query(`PREPARE reservation AS ${caught.text}`);
  // Each bound value in the text form node-postgres sends (its own prepareValue: arrays as array literals, dates…).
  const { prepareValue: prepare } = createRequire(import.meta.url)('pg/lib/utils') as { prepareValue(v: unknown): string | Buffer | null };
  const literal = (v: unknown) => {
    const text = prepare(v);
    return text === null || text === undefined ? 'NULL' : admin.escapeLiteral(String(text));
  };
  const { rows } = await admin.query(`EXPLAIN EXECUTE reservation(${caught.values.map(literal).join(', ')})`);
  const plan = rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n');
  const fine = [
    t.notMatch(plan, /Seq Scan on hosts\b/, 'no scan of every host'),
    t.notMatch(plan, /Seq Scan on used_ips\b/, 'no scan of every used address'),
    t.match(plan, /Update on hosts[\s\S]*?Index Scan using hosts_pkey on hosts/, 'the host row it updates is fetched by its key'),
  ].every(Boolean);
  if (!fine) t.comment(plan);
});
