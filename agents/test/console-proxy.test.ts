// The console proxy agent: tokens established over the agent protocol open one WebSocket → VNC path to a
// simulated VM's RFB console; reused, expired, wrong and revoked tokens are refused; revocation and idleness close
// live sessions.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConsoleProxy, consoleProxyOptionsFromEnv } from '../src/console-proxy/handlers.js';
import { call, start } from './helpers.js';
import { closeOf, establish, openWs, refused, rfbHandshake, simulatedVm } from './console-proxy-helpers.js';

// startAgent builds the console proxy from the environment: an ephemeral WebSocket port for tests.
process.env.ZSTACK_CONSOLE_PROXY_PORT = '0';

const MN = { target: 'mn-1' };

async function setup(t: { teardown(fn: () => unknown): void }) {
  const vm = await simulatedVm();
  const proxy = await start({ kind: 'console-proxy' });
  t.teardown(async () => {
    await proxy.close();
    await vm.sim.close();
  });
  const target = { vmUuid: vm.vmUuid, targetHostname: vm.vncHost, targetPort: vm.vncPort };
  return { vm, proxy, target };
}

t.test('a token opens the VM console: RFB 3.8 banner, handshake and security None up to ServerInit', async (t) => {
  const { vm, proxy, target } = await setup(t);
  const ping = (await call(proxy, '/console/ping', {}, MN)).body;
  t.equal(ping.success, true);
  t.ok(ping.proxyPort > 0, 'ping tells the WebSocket port');
  t.equal(ping.scheme, 'ws');

  const est = await establish(proxy, { ...target, idleTimeoutMs: 0 });
  t.equal(est.success, true, est.error);
  t.match(est.token, /^[A-Za-z0-9_-]{32}$/, '24 random bytes, base64url');
  t.equal(est.proxyPort, ping.proxyPort);
  t.equal(est.proxyHostname, '127.0.0.1');
  t.equal(est.scheme, 'ws');
  t.ok(est.expiresAt > Date.now() + 29 * 60_000, 'default expiry 30 minutes');
  t.equal((await call(proxy, '/console/check', { token: est.token, vmUuid: vm.vmUuid }, MN)).body.available, true);

  const opened = await openWs(`ws://127.0.0.1:${est.proxyPort}/?token=${est.token}`);
  t.teardown(() => opened.ws.terminate());
  t.equal(opened.ws.protocol, '', 'no subprotocol asked, none chosen (noVNC default)');
  const hs = await rfbHandshake(opened);
  t.equal(hs.version, 'RFB 003.008\n');
  t.same(hs.types, [1, 1], 'security type None offered');
  t.equal(hs.securityResult, 0);
  t.same([hs.width, hs.height, hs.name], [640, 480, vm.vmUuid]);

  // A full framebuffer update (1.2 MB) comes through in order.
  opened.ws.send(Buffer.from([3, 0, 0, 0, 0, 0, 2, 128, 1, 224]));
  const update = await opened.read(16);
  t.equal(update.readUInt16BE(2), 1, 'one rectangle');
  const pixels = await opened.read(640 * 480 * 4);
  t.equal(pixels.readUInt32LE(0), pixels.readUInt32LE(pixels.length - 4), 'solid colour');

  const check = (await call(proxy, '/console/check', { token: est.token }, MN)).body;
  t.same([check.available, check.connections], [false, 1], 'a used token is no longer available');
  t.match(check.reason, /already used/);
  const ping2 = (await call(proxy, '/console/ping', {}, MN)).body;
  t.same([ping2.connections, ping2.tokens], [1, 0]);

  // Stopping the VM closes its VNC listener, which closes the session.
  const closed = closeOf(opened.ws);
  await call(vm.sim, '/vm/stop', { uuid: vm.vmUuid }, { target: vm.hostUuid });
  t.same(await closed, { code: 1000, reason: 'VNC server closed the connection' });
});

t.test('refused tokens: reused, expired, wrong, missing, revoked; unreachable targets keep the token', async (t) => {
  const { vm, proxy, target } = await setup(t);
  const est = await establish(proxy, target);
  const url = (token: string) => `ws://127.0.0.1:${est.proxyPort}/?token=${token}`;

  const first = await openWs(url(est.token));
  t.teardown(() => first.ws.terminate());
  t.equal((await first.read(12)).toString(), 'RFB 003.008\n');
  const reused = await refused(url(est.token));
  t.same([reused.status, reused.reason], [403, 'token already used (a token opens one connection)']);
  t.ok(first.ws.readyState === first.ws.OPEN, 'the open connection keeps going');

  const wrong = await refused(url('x'.repeat(32)));
  t.same([wrong.status, wrong.reason], [401, 'unknown token']);
  const missing = await refused(`ws://127.0.0.1:${est.proxyPort}/`);
  t.equal(missing.status, 401);
  t.match(missing.reason, /no token/);

  const shortLived = await establish(proxy, { ...target, ttlMs: 40 });
  await new Promise((r) => setTimeout(r, 60));
  const expired = await refused(url(shortLived.token));
  t.same([expired.status, expired.reason], [403, 'token expired']);
  t.match((await call(proxy, '/console/check', { token: shortLived.token }, MN)).body, { available: false, reason: 'token expired' });
  const past = await establish(proxy, { ...target, expiresAt: Date.now() - 1 });
  t.equal(past.success, false);
  t.match(past.error, /not in the future/);

  const toRevoke = await establish(proxy, target);
  const del = (await call(proxy, '/console/delete', { token: toRevoke.token }, MN)).body;
  t.same(del, { success: true, revoked: 1, closedConnections: 0 });
  const revoked = await refused(url(toRevoke.token));
  t.same([revoked.status, revoked.reason], [403, 'token revoked']);
  t.same(
    (await call(proxy, '/console/delete', { token: 'never-existed-token' }, MN)).body,
    { success: true, revoked: 0, closedConnections: 0 },
    'revoking the unknown succeeds',
  );
  t.equal((await call(proxy, '/console/delete', {}, MN)).status, 400, 'token or vmUuid is required');

  // A VNC target that is not there: 502, and the token can be used once the target is back.
  const closedPort = await freePort();
  const unreachable = await establish(proxy, { ...target, targetPort: closedPort });
  const bad = await refused(url(unreachable.token));
  t.equal(bad.status, 502);
  t.match(bad.reason, /cannot reach the VM's VNC server 127\.0\.0\.1:\d+: ECONNREFUSED/);
  t.equal((await call(proxy, '/console/check', { token: unreachable.token }, MN)).body.available, true, 'not spent');

  // A token is bound to its VM and target.
  const bound = (await call(proxy, '/console/check', { token: est.token, vmUuid: 'other-vm' }, MN)).body;
  t.equal(bound.available, false);

  // Tokens chosen by the caller: a retried establish refreshes, a clash fails.
  const chosen = 'management-node-chosen-token-01';
  const a = await establish(proxy, { ...target, token: chosen, ttlMs: 1000 });
  const b = await establish(proxy, { ...target, token: chosen, ttlMs: 60_000 });
  t.same([a.success, b.success, b.token], [true, true, chosen]);
  t.ok(b.expiresAt > a.expiresAt, 'expiry refreshed');
  const clash = await establish(proxy, { ...target, vmUuid: 'another-vm', token: chosen });
  t.same([clash.success, clash.error], [false, 'token already exists; establish a new one']);
  t.equal((await call(proxy, '/console/establish', { ...target, token: 'short' }, MN)).status, 400, 'weak tokens are rejected');
  t.equal(vm.vmUuid, target.vmUuid);
});

t.test('deleting by VM closes its live sessions; idle sessions are closed', async (t) => {
  const { vm, proxy, target } = await setup(t);
  const one = await establish(proxy, target);
  const two = await establish(proxy, target);
  const a = await openWs(`ws://127.0.0.1:${one.proxyPort}/?token=${one.token}`);
  const b = await openWs(`ws://127.0.0.1:${two.proxyPort}/?token=${two.token}`);
  t.teardown(() => {
    a.ws.terminate();
    b.ws.terminate();
  });
  await rfbHandshake(a);
  await rfbHandshake(b);
  const spare = await establish(proxy, target);
  const closedA = closeOf(a.ws);
  const closedB = closeOf(b.ws);
  const del = (await call(proxy, '/console/delete', { vmUuid: vm.vmUuid }, MN)).body;
  t.same(del, { success: true, revoked: 3, closedConnections: 2 });
  t.same(await closedA, { code: 4001, reason: 'console access revoked' });
  t.same(await closedB, { code: 4001, reason: 'console access revoked' });
  t.equal((await refused(`ws://127.0.0.1:${spare.proxyPort}/?token=${spare.token}`)).reason, 'token revoked');
  t.equal((await call(proxy, '/console/ping', {}, MN)).body.connections, 0);

  // Idle: traffic keeps the session alive, silence closes it.
  const idle = await establish(proxy, { ...target, idleTimeoutMs: 400 });
  t.equal(idle.idleTimeoutMs, 400);
  const c = await openWs(`ws://127.0.0.1:${idle.proxyPort}/?token=${idle.token}`);
  t.teardown(() => c.ws.terminate());
  await rfbHandshake(c);
  const began = Date.now();
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 100));
    c.ws.send(Buffer.from([5, 0, 0, 10, 0, 10])); // PointerEvent
  }
  t.equal(c.ws.readyState, c.ws.OPEN, 'activity keeps it open past the idle timeout');
  const closed = await closeOf(c.ws);
  t.same(closed, { code: 4000, reason: 'idle for 400 ms' });
  t.ok(Date.now() - began >= 600 + 350, 'closed only after the silence');
});

t.test('websockify subprotocols: binary, and base64 text frames', async (t) => {
  const { proxy, target } = await setup(t);
  const bin = await establish(proxy, target);
  const a = await openWs(`ws://127.0.0.1:${bin.proxyPort}/?token=${bin.token}`, ['binary', 'base64']);
  t.teardown(() => a.ws.terminate());
  t.equal(a.ws.protocol, 'binary');
  t.equal((await a.read(12)).toString(), 'RFB 003.008\n');

  const b64 = await establish(proxy, target);
  const b = await openWs(`ws://127.0.0.1:${b64.proxyPort}/?token=${b64.token}`, 'base64');
  t.teardown(() => b.ws.terminate());
  t.equal(b.ws.protocol, 'base64');
  t.equal((await b.read(12)).toString(), 'RFB 003.008\n');
  t.same([b.frames[0].data.toString(), b.frames[0].isBinary], [Buffer.from('RFB 003.008\n').toString('base64'), false], 'base64 text frames');
  b.ws.send(Buffer.from('RFB 003.008\n').toString('base64'));
  t.same([...(await b.read(2))], [1, 1], 'base64 from the client is decoded');
});

t.test('bytes both ways arrive intact and in order (64 MiB down, 8 MiB up)', async (t) => {
  const down = pattern(64 * 1024 * 1024);
  let upHash = '';
  let upBytes = 0;
  const server = net.createServer((s) => {
    const h = createHash('sha256');
    s.on('data', (c: Buffer) => {
      h.update(c);
      upBytes += c.length;
      if (upBytes === 8 * 1024 * 1024) upHash = h.digest('hex');
    });
    s.end(down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const proxy = new ConsoleProxy({ port: 0 });
  t.teardown(() => proxy.close());
  const port = await proxy.ensureListening();
  const token = proxy.tokens.establish({ vmUuid: 'vm', targetHostname: '127.0.0.1', targetPort: (server.address() as AddressInfo).port });
  const { ws } = await openWs(`ws://127.0.0.1:${port}/?token=${token.token}`);
  const h = createHash('sha256');
  let got = 0;
  ws.on('message', (d: Buffer) => {
    h.update(d);
    got += d.length;
  });
  const up = pattern(8 * 1024 * 1024, 7);
  for (let i = 0; i < up.length; i += 65536) ws.send(up.subarray(i, i + 65536));
  const closed = await closeOf(ws);
  t.equal(closed.code, 1000, 'closed when the VNC side ended');
  t.equal(got, down.length);
  t.equal(h.digest('hex'), createHash('sha256').update(down).digest('hex'), 'downstream intact');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(upBytes, up.length);
  t.equal(upHash, createHash('sha256').update(up).digest('hex'), 'upstream intact');
});

t.test('backpressure: a client that stops reading stops the proxy reading from the VNC server', async (t) => {
  const total = 192 * 1024 * 1024;
  const chunk = Buffer.alloc(256 * 1024, 7);
  let written = 0;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const proxy = new ConsoleProxy({ port: 0 });
  t.teardown(() => proxy.close());
  const port = await proxy.ensureListening();
  const token = proxy.tokens.establish({ vmUuid: 'vm', targetHostname: '127.0.0.1', targetPort: (server.address() as AddressInfo).port });
  const { ws } = await openWs(`ws://127.0.0.1:${port}/?token=${token.token}`);
  t.teardown(() => ws.terminate());
  let got = 0;
  ws.on('message', (d: Buffer) => {
    got += d.length;
  });
  ws.pause();
  await new Promise((r) => setTimeout(r, 400));
  t.ok(written < 96 * 1024 * 1024, `the VNC server could only write ${Math.round(written / 2 ** 20)} MiB of ${total / 2 ** 20} while the client read nothing`);
  ws.resume();
  const started = Date.now();
  while (got < total && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
  t.equal(got, total, 'everything arrives once the client reads again');
});

const OPENSSL = spawnSync('openssl', ['version']).status === 0;

t.test('TLS: wss with the given certificate', { skip: OPENSSL ? false : 'openssl is not installed: cannot make a test certificate' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'console-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const vm = await simulatedVm('vm-tls');
  t.teardown(() => vm.sim.close());
  const opts = consoleProxyOptionsFromEnv({
    ZSTACK_CONSOLE_PROXY_PORT: '0',
    ZSTACK_CONSOLE_PROXY_PUBLIC_HOSTNAME: 'console.example',
    ZSTACK_CONSOLE_PROXY_TLS_CERT: join(dir, 'cert.pem'),
    ZSTACK_CONSOLE_PROXY_TLS_KEY: join(dir, 'key.pem'),
  });
  const proxy = new ConsoleProxy(opts);
  t.teardown(() => proxy.close());
  const port = await proxy.ensureListening();
  t.equal(proxy.scheme, 'wss');
  t.equal(proxy.advertisedHostname, 'console.example');
  const token = proxy.tokens.establish({ vmUuid: vm.vmUuid, targetHostname: vm.vncHost, targetPort: vm.vncPort });
  const ca = readFileSync(join(dir, 'cert.pem'));
  const opened = await openWs(`wss://localhost:${port}/?token=${token.token}`, undefined, { ca });
  t.teardown(() => opened.ws.terminate());
  const hs = await rfbHandshake(opened);
  t.equal(hs.name, 'vm-tls', 'RFB over wss');
  t.throws(() => consoleProxyOptionsFromEnv({ ZSTACK_CONSOLE_PROXY_TLS_CERT: 'x' }), /go together/);
  t.throws(() => consoleProxyOptionsFromEnv({ ZSTACK_CONSOLE_PROXY_PORT: 'http' }), /invalid ZSTACK_CONSOLE_PROXY_PORT/);
});

t.test('a taken port: ping and establish fail with the reason, and recover when it is free', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as AddressInfo).port;
  const proxy = await start({ kind: 'console-proxy', consoleProxy: { port } });
  t.teardown(() => proxy.close());
  const ping = (await call(proxy, '/console/ping', {}, MN)).body;
  t.equal(ping.success, false);
  t.match(ping.error, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  const est = await establish(proxy, { vmUuid: 'v', targetHostname: '127.0.0.1', targetPort: 5900 });
  t.equal(est.success, false);
  await new Promise<void>((r) => blocker.close(() => r()));
  const again = (await call(proxy, '/console/ping', {}, MN)).body;
  t.same([again.success, again.proxyPort], [true, port], 'listening once the port is free');
  t.equal((await call(proxy, '/console/echo', undefined, { secret: null, raw: '' })).status, 200);
  const res = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(res.status, 426, 'plain HTTP is told to upgrade');
});

function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
