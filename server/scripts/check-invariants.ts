// `npm run check:invariants`: the invariant checker (server/src/core/invariants.ts) against DATABASE_URL, for an
// operator. With ZSTACK_SIMULATOR_URL (and ZSTACK_AGENT_SECRET) the simulated hosts' agents are compared with the
// database too. Prints the figures and every violation; exits 1 when any invariant does not hold.
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { AgentClient } from '../src/agent-client/index.js';
import { checkInvariants, type HostVmReport } from '../src/core/invariants.js';
import type { Db } from '../src/db/index.js';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('check:invariants: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/zstack)');
  process.exit(2);
}
pg.types.setTypeParser(20, (v) => Number(v));
const pool = new pg.Pool({ connectionString: url, max: 2 });
const db = drizzle(pool) as unknown as Db;
const simulatorUrl = process.env.ZSTACK_SIMULATOR_URL;
const agents = new AgentClient(process.env.ZSTACK_AGENT_SECRET);
try {
  const report = await checkInvariants(db, {
    limit: 50,
    agents: simulatorUrl
      ? async (hostUuids) => {
          const { rows } = await pool.query<{ uuid: string }>(`SELECT uuid FROM hosts WHERE hypervisor_type = 'Simulator' AND uuid = ANY($1)`, [hostUuids]);
          const out: HostVmReport[] = [];
          for (const { uuid } of rows) {
            const r = await agents.call(simulatorUrl, '/vm/vmsync', {}, { targetUuid: uuid, timeoutMs: 5000 }).catch(() => undefined);
            if (r) out.push({ hostUuid: uuid, states: r.states ?? {} });
          }
          return out;
        }
      : undefined,
  });
  console.log(JSON.stringify(report.figures));
  for (const v of report.violations) console.log(`VIOLATION ${v}`);
  console.log(report.ok ? 'all invariants hold' : `${report.violations.length} violation line(s)`);
  process.exitCode = report.ok ? 0 : 1;
} catch (e) {
  console.error(`check:invariants: ${e instanceof Error ? e.message : e}`);
  process.exitCode = 2;
} finally {
  await pool.end();
}
