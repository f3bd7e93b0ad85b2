// The embedded database survives kill -9: ten rounds of writes, each ended by SIGKILL of the server (and, every
// other round, of the database's postmaster too) at an arbitrary moment; every next start succeeds and every write
// the database acknowledged before the kill is there.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import pg from 'pg';
import { REPO, alive } from '../lib/processes.js';
import { until } from '../lib/wait.js';
import { postgresBinaries } from '../../server/src/db/embedded-postgres.js';

let missing: string | undefined;
try {
  postgresBinaries();
} catch (e) {
  missing = (e as Error).message;
}

t.test('10 rounds of kill -9 during writes: every start succeeds, every acknowledged write survives', { skip: missing }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'zstack-crash-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const acked = new Set<number>();
  let lastPostgres: number | undefined;
  t.teardown(() => {
    if (lastPostgres && alive(lastPostgres)) process.kill(lastPostgres, 'SIGKILL');
  });
  for (let round = 1; round <= 10; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/foundation/fixtures/embedded-writer.ts', dataDir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const err: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => err.push(l));
    let ready: { ready: string; postgresPid: number } | undefined;
    let exitCode: number | null = null;
    child.once('exit', (c) => (exitCode = c));
    const roundAcks: number[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const msg = JSON.parse(l) as { ready?: string; postgresPid?: number; ack?: number };
      if (msg.ready) ready = msg as typeof ready;
      if (msg.ack) roundAcks.push(msg.ack);
    });
    const r = await until(`start of round ${round}`, () => ready ?? (exitCode !== null ? 'exited' : undefined), 120_000);
    t.not(r, 'exited', `round ${round}: the start succeeded${err.length ? ` (${err.join(' | ')})` : ''}`);
    if (r === 'exited') return;
    lastPostgres = ready!.postgresPid;

    // Everything acknowledged in earlier rounds is there.
    const c = new pg.Client({ connectionString: ready!.ready });
    await c.connect();
    const { rows } = await c.query<{ id: number }>('SELECT id FROM acked');
    await c.end();
    const present = new Set(rows.map((x) => x.id));
    const lost = [...acked].filter((id) => !present.has(id));
    t.same(lost, [], `round ${round}: none of the ${acked.size} acknowledged writes is lost`);

    // Kill at a different moment each round: after 5..50 more acknowledged writes.
    const target = 5 + ((round * 17) % 46);
    await until(`${target} writes in round ${round}`, () => roundAcks.length >= target, 120_000, 1);
    child.kill('SIGKILL');
    if (round % 2 === 0) process.kill(ready!.postgresPid, 'SIGKILL');
    await until('the killed writer to exit', () => exitCode !== null || child.signalCode !== null);
    for (const id of roundAcks) acked.add(id);
  }
  t.ok(acked.size >= 10 * 5, `${acked.size} acknowledged writes over 10 rounds`);
});
