#!/usr/bin/env node
// Cold start of `npm start` on a fresh embedded database: time to the first answered request, and idle RSS of
// the server process (and of the simulator agent it spawns) 5 s later.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const port = 18000 + Math.floor(Math.random() * 1000);
const dataDir = mkdtempSync(join(tmpdir(), 'zstack-bench-'));
const started = Date.now();
const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
  env: { ...process.env, ZSTACK_PORT: String(port), ZSTACK_DATA_DIR: dataDir },
  stdio: 'ignore',
});
let firstAnswer;
for (;;) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/zstack/v1/management-nodes/actions`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"getVersion":{}}',
    });
    if (res.ok) { firstAnswer = Date.now() - started; break; }
  } catch {}
  if (Date.now() - started > 60_000) throw new Error('no answer within 60 s');
  await new Promise((r) => setTimeout(r, 25));
}
await new Promise((r) => setTimeout(r, 5000));
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const kids = execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
console.log(JSON.stringify({ coldStartToFirstAnswerMs: firstAnswer, serverRssMb: Math.round(rss(child.pid)), simulatorRssMb: kids.map((k) => Math.round(rss(Number(k)))) }));
child.kill('SIGTERM');
await new Promise((r) => setTimeout(r, 1000));
rmSync(dataDir, { recursive: true, force: true });
