// The browser console in headless Chromium: the page from server/src/console/page.ts loads noVNC and connects
// through the console proxy agent to a simulated VM's RFB console. Screenshot: test/artifacts/console.png.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import t from 'tap';
import { startAgent } from '../../agents/src/index.js';
import { call, SECRET } from '../../agents/test/helpers.js';
import { simulatedVm } from '../../agents/test/console-proxy-helpers.js';
import { consolePage, consolePageOptions, registerConsoleAssets } from '../../server/src/console/page.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
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

const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

t.test('console page: query checks and escaping', async (t) => {
  t.match(consolePageOptions({ token: 'abc_DEF-123', port: '4900', host: 'console.example', scheme: 'wss' }), {
    token: 'abc_DEF-123',
    port: 4900,
    host: 'console.example',
    scheme: 'wss',
  });
  t.same(consolePageOptions({ port: '4900' }), { error: 'token is missing or malformed' });
  t.same(consolePageOptions({ token: 'a"b', port: '4900' }), { error: 'token is missing or malformed' });
  t.same(consolePageOptions({ token: 'abc', port: 'x' }), { error: 'port must be an integer 1-65535' });
  t.same(consolePageOptions({ token: 'abc', port: '1', host: 'a b' }), { error: 'host is not a hostname or IP address' });
  t.same(consolePageOptions({ token: 'abc', port: '1', scheme: 'http' }), { error: 'scheme must be ws or wss' });
  t.match(consolePageOptions({ token: 'abc', port: '1', host: '[::1]' }), { host: '::1' });
  const html = consolePage({ token: 'tok', port: 4900, title: '</script><img src=x onerror=alert(1)>' });
  t.notMatch(html, /<img src=x/, 'the title is escaped');
  t.match(html, /"title":"\\u003c\/script\\u003e/, 'embedded JSON cannot close its script element');
  t.match(html, /script-src &#39;self&#39; &#39;sha256-[A-Za-z0-9+/]+=*&#39;/, 'CSP allows only the page script by hash');
});

t.test('noVNC connects through the console proxy to a simulated VM', { skip }, async (t) => {
  process.env.ZSTACK_CONSOLE_PROXY_PORT = '0';
  // Closed in this order once the test ends: the browser first, so the web server has no keep-alive clients left.
  const cleanup: (() => Promise<unknown>)[] = [];
  t.teardown(async () => {
    for (const close of cleanup.reverse()) await close().catch(() => {});
  });
  const vm = await simulatedVm('vm-browser');
  cleanup.push(() => vm.sim.close());
  const proxy = await startAgent({ kind: 'console-proxy', port: 0, host: '127.0.0.1', secret: SECRET });
  cleanup.push(() => proxy.close());
  const est = (
    await call(
      proxy,
      '/console/establish',
      {
        vmUuid: vm.vmUuid,
        targetHostname: vm.vncHost,
        targetPort: vm.vncPort,
        ttlMs: 60_000,
        idleTimeoutMs: 30_000,
      },
      { target: 'mn-1' },
    )
  ).body;
  t.equal(est.success, true, est.error);

  const web = Fastify({ logger: false, forceCloseConnections: true });
  registerConsoleAssets(web);
  web.get('/zstack/console', async (request, reply) => {
    const opts = consolePageOptions(request.query as Record<string, unknown>);
    if ('error' in opts) return reply.code(400).type('text/plain').send(opts.error);
    return reply.type('text/html; charset=utf-8').send(consolePage(opts));
  });
  await web.listen({ port: 0, host: '127.0.0.1' });
  cleanup.push(() => web.close());
  const base = `http://127.0.0.1:${(web.server.address() as { port: number }).port}`;
  t.equal((await fetch(`${base}/zstack/console/novnc/core/rfb.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
  t.equal((await fetch(`${base}/zstack/console/novnc/core/../package.json`)).status, 404, 'only noVNC modules are served');
  t.equal((await fetch(`${base}/zstack/console/novnc/core/missing.js`)).status, 404);
  t.equal((await fetch(`${base}/zstack/console?port=1`)).status, 400);

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 20_000 });
  cleanup.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });

  await page.goto(`${base}/zstack/console?token=${est.token}&host=127.0.0.1&port=${est.proxyPort}`);
  await page.waitForFunction(() => (window as unknown as { zstackConsole?: { state: string } }).zstackConsole?.state !== 'connecting', undefined, {
    timeout: 15_000,
  });
  const api = await page.evaluate(() => {
    const c = (window as unknown as { zstackConsole: { state: string; error: string | null; desktopName: string | null } }).zstackConsole;
    return { state: c.state, error: c.error, desktopName: c.desktopName, title: document.title };
  });
  t.same(problems, [], 'no script errors (CSP included)');
  t.equal(api.state, 'connected', `noVNC reached the connected state${api.error ? `: ${api.error}` : ''}`);
  t.equal(await page.textContent('#status'), 'Connected');

  // The simulated VM's solid colour reaches the canvas.
  await page.waitForFunction(
    () => {
      const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
      if (!canvas || canvas.width < 640) return false;
      const [r, g, b] = canvas.getContext('2d')!.getImageData(320, 240, 1, 1).data;
      return r === 0x1f && g === 0x6f && b === 0xb5;
    },
    undefined,
    { timeout: 10_000 },
  );
  t.pass('the VM screen is drawn');
  const desktop = await page.evaluate(() => (window as unknown as { zstackConsole: { desktopName: string } }).zstackConsole.desktopName);
  t.equal(desktop, 'vm-browser', 'desktop name from ServerInit');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'console.png') });
  t.ok(existsSync(join(ARTIFACTS, 'console.png')), 'screenshot saved as test/artifacts/console.png');

  // The token is spent: reloading the page cannot open a second session.
  const ping = (await call(proxy, '/console/ping', {}, { target: 'mn-1' })).body;
  t.equal(ping.connections, 1);
  const second = await browser.newPage();
  await second.goto(`${base}/zstack/console?token=${est.token}&host=127.0.0.1&port=${est.proxyPort}`);
  await second.waitForFunction(() => (window as unknown as { zstackConsole?: { state: string } }).zstackConsole?.state === 'failed', undefined, {
    timeout: 10_000,
  });
  t.pass('a reused token fails in the browser too');

  // Revoking the VM's console access ends the live session in the page.
  await call(proxy, '/console/delete', { vmUuid: vm.vmUuid }, { target: 'mn-1' });
  await page.waitForFunction(() => (window as unknown as { zstackConsole: { state: string } }).zstackConsole.state !== 'connected', undefined, {
    timeout: 10_000,
  });
  t.pass('revocation disconnects the page');
});
