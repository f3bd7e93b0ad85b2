// The API reference: every operation documents a summary, a description with its default timeout, its parameters and
// an example; `npm run docs` (Redoc via @redocly/cli, bundle inlined: works offline) renders them to static HTML; the
// server's /zstack/docs serves the interactive reference from local files only. Headless Chromium (Debian's
// `chromium` + playwright-core) opens both, finds AttachNetworkServiceToL3Network and keeps a screenshot in
// test/artifacts/docs.png.
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Fastify from 'fastify';
import { findRedocBundle, registerDocs } from '../../server/src/docs/index.js';
import { BUILT_REDOC_BUNDLE } from '../../server/src/docs/redoc-bundle.mjs';
import { loadSpec } from '../../server/src/core/spec.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const OP = 'AttachNetworkServiceToL3Network';
const SUMMARY = 'Attach network services to an L3 network';

const doc = loadSpec();
const operations = Object.entries<any>(doc.paths).flatMap(([path, item]) =>
  ['get', 'post', 'put', 'delete', 'patch'].filter((m) => item[m]).map((m) => ({ path, method: m, op: item[m] })),
);

t.test('every operation documents a summary, a description with its default timeout, and an example', async (t) => {
  t.ok(operations.length >= 90, `${operations.length} operations`);
  for (const { path, method, op } of operations) {
    const where = `${op.operationId} (${method.toUpperCase()} ${path})`;
    t.ok(op.summary, `${where}: summary`);
    t.match(op.description, new RegExp(`\\*\\*Default timeout:\\*\\* ${op['x-zstack-timeout']}\\.`), `${where}: the default timeout is in the description`);
    const body = op.requestBody?.content?.['application/json'];
    if (body) t.ok(body.example ?? body.examples ?? body.schema?.example, `${where}: a request example`);
    for (const p of op.parameters ?? []) {
      const param = p.$ref ? doc.components.parameters[p.$ref.split('/').pop()] : p;
      if (param.in !== 'header')
        t.ok(
          param.description || param.schema?.$ref || param.schema?.items?.$ref || param.schema?.description || param.in === 'path',
          `${where}: parameter ${param.name} documented`,
        );
    }
  }
});

t.test('the /zstack/docs routes (no browser)', async (t) => {
  const app = Fastify();
  registerDocs(app, doc);
  const bare = Fastify();
  registerDocs(bare, doc, { bundlePath: null });
  t.teardown(async () => {
    await app.close();
    await bare.close();
  });
  const page = await app.inject({ method: 'GET', url: '/zstack/docs' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /text\/html/);
  t.match(page.headers['content-security-policy'], /default-src 'self'/, 'nothing may load from elsewhere');
  t.match(page.body, /<script type="module" src="\/zstack\/docs\/init\.js"><\/script>/);
  t.notMatch(page.body, /https?:\/\//, 'no remote URL in the page');
  t.match((await app.inject({ method: 'GET', url: '/zstack/docs/init.js' })).body, /init\('\/zstack\/docs\/openapi\.json'/);
  const spec = await app.inject({ method: 'GET', url: '/zstack/docs/openapi.json' });
  t.equal(JSON.parse(spec.body).paths['/zstack/v1/l3-networks/{l3NetworkUuid}/network-services'].post.operationId, OP);
  const bundle = await app.inject({ method: 'GET', url: '/zstack/docs/redoc.standalone.js' });
  t.equal(bundle.statusCode, 200);
  t.ok(bundle.body.length > 1_000_000, 'the Redoc bundle, served locally');
  t.equal(
    (await app.inject({ method: 'GET', url: '/zstack/docs/redoc.standalone.js', headers: { 'if-none-match': bundle.headers.etag as string } })).statusCode,
    304,
  );

  const fallback = await bare.inject({ method: 'GET', url: '/zstack/docs' });
  t.match(
    fallback.body,
    new RegExp(
      `<tr id="static-${OP}"><td><code>${OP}</code></td><td>${SUMMARY}</td><td><code>POST /zstack/v1/l3-networks/\\{l3NetworkUuid\\}/network-services</code></td><td>30m</td></tr>`,
    ),
    'without the bundle: a plain table of every operation',
  );
  t.equal((fallback.body.match(/<tr id="static-/g) ?? []).length, operations.length);
});

t.test("the server build copies Redoc's bundle into dist/, found where no node_modules holds it", async (t) => {
  const built = join(repo, 'dist', BUILT_REDOC_BUNDLE);
  // `npm install` builds dist/ (prepare); a checkout built before this copy existed is rebuilt once here.
  if (!existsSync(built)) execFileSync(process.execPath, [join(repo, 'scripts/build-server.mjs')], { stdio: 'ignore' });
  t.ok(existsSync(built), 'dist/ holds the bundle');
  t.equal(findRedocBundle(tmpdir()), built, "outside any node_modules, the build's copy is served");
  t.equal(statSync(built).size, statSync(findRedocBundle()!).size, 'the same bundle as the installed one');
});

t.test(
  'in headless Chromium',
  { skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` },
  async (t) => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const app = Fastify();
    registerDocs(app, doc);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const out = mkdtempSync(join(tmpdir(), 'zstack-docs-'));
    t.teardown(async () => {
      await browser.close();
      await app.close();
      rmSync(out, { recursive: true, force: true });
    });

    t.test('npm run docs: static HTML that renders offline', async (t) => {
      const html = join(out, 'api.html');
      const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
      t.match(pkg.scripts.docs, /^redocly build-docs openapi\/dist\/openapi\.json -o docs\/api\.html --inlineBundle --config openapi\/redocly\.yaml$/);
      await run(
        join(repo, 'node_modules/.bin/redocly'),
        ['build-docs', 'openapi/dist/openapi.json', '-o', html, '--inlineBundle', '--config', 'openapi/redocly.yaml'],
        { cwd: repo },
      );
      const text = readFileSync(html, 'utf8');
      t.notMatch(text, /<script[^>]+src="https?:/, 'no script from a CDN');
      const page = await browser.newPage();
      const remote: string[] = [];
      page.on('requestfinished', (r) => /^https?:/.test(r.url()) && remote.push(r.url()));
      await page.goto(`file://${html}#operation/${OP}`);
      const heading = page.locator('h1, h2', { hasText: SUMMARY }).first();
      await heading.waitFor({ timeout: 20_000 });
      t.ok(await heading.isVisible(), `${SUMMARY} is shown`);
      t.ok(await page.getByText('Default timeout:').first().isVisible(), 'its default timeout is shown');
      await page.getByRole('button', { name: 'curl', exact: true }).first().click();
      await page.getByRole('menuitem', { name: 'TypeScript SDK' }).first().click();
      const sdkSample = page.getByText(/await zs\.attachNetworkServiceToL3Network\(/).first();
      await sdkSample.waitFor({ timeout: 10_000 });
      t.ok(await sdkSample.isVisible(), 'its TypeScript SDK sample');
      t.same(remote, [], 'nothing was fetched from the network');
      await page.close();
    });

    t.test('/zstack/docs: the interactive reference', async (t) => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const finished: string[] = [];
      page.on('requestfinished', (r) => finished.push(r.url()));
      await page.goto(`${url}/zstack/docs#operation/${OP}`);
      // Redoc routes to the operation by its operationId: #/<tag>/<operationid>.
      const heading = page.locator('h1, h2', { hasText: SUMMARY }).first();
      await heading.waitFor({ timeout: 20_000 });
      t.ok(await heading.isVisible(), `${OP} found: "${SUMMARY}"`);
      t.match(page.url(), new RegExp(`#/networkservice/${OP.toLowerCase()}$`), 'the operation has its own link');
      t.equal(await heading.locator('a').first().getAttribute('href'), `#/networkservice/${OP.toLowerCase()}`);
      const text = await page.evaluate(() => document.body.innerText);
      t.match(text, /Asynchronous: answers 202 and runs as a job[;.][\s\S]*?Default timeout: ?\n?30m\./, 'description with the default timeout');
      t.match(text, /l3NetworkUuid/, 'its parameters');
      t.match(text, /X-API-Timeout/);
      t.match(text, /"networkServices"/, 'its request example');
      // Its code samples (x-codeSamples): a menu of the three forms; the SDK's call shown once chosen.
      t.ok(
        await page
          .getByText(/^curl -X POST .*\/network-services/m)
          .first()
          .isVisible(),
        'the curl sample is shown',
      );
      await page.getByRole('button', { name: 'curl', exact: true }).first().click();
      t.same(
        await page
          .getByRole('menuitem')
          .filter({ hasText: /^(curl|TypeScript SDK|zstack-cli)$/ })
          .allInnerTexts(),
        ['curl', 'TypeScript SDK', 'zstack-cli'],
        'three samples to choose from',
      );
      await page.getByRole('menuitem', { name: 'TypeScript SDK' }).first().click();
      const sdkSample = page.getByText(/await zs\.attachNetworkServiceToL3Network\(/).first();
      await sdkSample.waitFor({ timeout: 10_000 });
      t.ok(await sdkSample.isVisible(), 'the TypeScript SDK sample renders');
      t.ok(
        finished.some((u) => u === `${url}/zstack/docs/redoc.standalone.js`),
        'the bundle came from this server',
      );
      t.same(
        finished.filter((u) => /^https?:/.test(u) && !u.startsWith(url)),
        [],
        'and nothing from anywhere else',
      );

      mkdirSync(join(repo, 'test/artifacts'), { recursive: true });
      await heading.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(repo, 'test/artifacts/docs.png') });
      t.ok(existsSync(join(repo, 'test/artifacts/docs.png')), 'screenshot kept in test/artifacts/docs.png');
      await page.close();
    });

    t.test('the getting-started page, reached from the reference', async (t) => {
      const page = await browser.newPage();
      const finished: string[] = [];
      page.on('requestfinished', (r) => finished.push(r.url()));
      await page.goto(`${url}/zstack/docs`);
      await page.getByRole('link', { name: 'Getting started' }).click();
      await page.waitForURL(`${url}/zstack/docs/getting-started`);
      t.ok(await page.getByRole('heading', { name: 'Getting started' }).isVisible(), 'its heading');
      t.ok(await page.getByText("zs.createVmInstance({ name: 'vm1'").isVisible(), 'the SDK program');
      t.ok(await page.getByText('zstack-cli CreateVmInstance name=vm1').isVisible(), 'the CLI program');
      t.same(
        finished.filter((u) => /^https?:/.test(u) && !u.startsWith(url)),
        [],
        'nothing from anywhere else',
      );
      await page.screenshot({ path: join(repo, 'test/artifacts/getting-started.png'), fullPage: true });
      await page.close();
    });
  },
);
