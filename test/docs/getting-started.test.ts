// The getting-started page (/zstack/docs/getting-started) shows two programs, zone → running VM with the SDK and with
// zstack-cli: both are run here, exactly as the page shows them, each against an empty live server.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Fastify from 'fastify';
import { loadSpec } from '../../server/src/core/spec.js';
import { registerDocs } from '../../server/src/docs/index.js';
import { FIRST_VM_CLI, FIRST_VM_SDK } from '../../server/src/docs/getting-started.js';
import { startServer } from '../lib/harness.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const PAGE_ENDPOINT = 'http://localhost:8080';
const hasJq = await run('jq', ['--version']).then(
  () => true,
  () => false,
);

t.test('the page is served, linked from the reference, and shows both programs', async (t) => {
  const app = Fastify();
  registerDocs(app, loadSpec());
  t.teardown(() => app.close());
  const index = await app.inject({ method: 'GET', url: '/zstack/docs' });
  t.match(index.body, /<a href="\/zstack\/docs\/getting-started">Getting started<\/a>/);
  const page = await app.inject({ method: 'GET', url: '/zstack/docs/getting-started' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-security-policy'], /default-src 'none'/);
  const text = page.body
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  t.ok(text.includes(FIRST_VM_SDK.trimEnd()), 'the SDK program');
  t.ok(text.includes(FIRST_VM_CLI.trimEnd()), 'the CLI program');
});

t.test('the SDK program: zone to a running VM', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  mkdirSync(join(repo, 'test/artifacts'), { recursive: true });
  const file = join(repo, 'test/artifacts', `first-vm-${process.pid}.mts`);
  writeFileSync(file, FIRST_VM_SDK.split(PAGE_ENDPOINT).join(s.url));
  t.teardown(() => rmSync(file, { force: true }));
  const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: repo, timeout: 120_000 });
  t.match(stdout, /^vm1 is Running with IP 10\.0\.0\.\d+$/m);
  t.equal((await s.client.queryVmInstance({ q: ['name=vm1', 'state=Running'] })).inventories!.length, 1);
});

t.test('the zstack-cli program: zone to a running VM', { skip: hasJq ? false : 'jq is not installed (apt-get install jq)' }, async (t) => {
  const s = await startServer();
  const home = mkdtempSync(join(tmpdir(), 'zstack-start-'));
  mkdirSync(join(home, 'bin'));
  symlinkSync(join(repo, 'sdk/bin/zstack-cli.js'), join(home, 'bin/zstack-cli'));
  t.teardown(async () => {
    await s.close();
    rmSync(home, { recursive: true, force: true });
  });
  const env = { ...process.env, HOME: home, PATH: `${join(home, 'bin')}:${process.env.PATH}`, ZSTACK_HOST: '127.0.0.1', ZSTACK_PORT: new URL(s.url).port };
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', FIRST_VM_CLI], { env, timeout: 180_000 });
  t.match(stdout, /^vm1 is Running with IP 10\.0\.0\.\d+$/m);
  t.equal((await s.client.queryVmInstance({ q: ['name=vm1', 'state=Running'] })).inventories!.length, 1);
});
