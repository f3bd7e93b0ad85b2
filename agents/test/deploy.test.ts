// The SSH deployer against a real sshd (test/lib/sshd.ts): first deploy, no-change redeploy, restart of a killed
// agent, config change, and the clear errors (wrong password, refused port, failing task, host key mismatch,
// deadline), transient-failure retry, task logging to a URL, and deployMany.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t, { type Test } from 'tap';
import { freePort, sshdUnavailable, startSshd, type TestSshd } from '../../test/lib/sshd.js';
import { DeployError, TASK_NAMES, deployAgent, deployMany, fingerprint, type DeployOptions, type DeployResult, type TaskLog } from '../src/deploy/index.js';

const unavailable = sshdUnavailable();

if (unavailable) {
  t.plan(0, `the deployer tests need a real sshd: ${unavailable}`);
} else {
  await suite();
}

async function suite(): Promise<void> {
  const sshd = await startSshd();
  t.teardown(() => sshd.stop());
  t.comment(`sshd on 127.0.0.1:${sshd.port} as ${sshd.username}`);

  const kvmRoot = join(sshd.home, 'kvm');
  const kvm: DeployOptions = {
    ...login(sshd),
    kind: 'kvm',
    installRoot: kvmRoot,
    agentPort: await freePort(),
    agentListenHost: '127.0.0.1',
    secret: 'first-secret',
    managementUrl: 'http://127.0.0.1:8080/zstack',
  };
  let first: DeployResult | undefined;

  t.test('first deploy: the kvm agent answers /host/echo, every task logged to the log URL', async (t) => {
    const logs = await logServer(t);
    first = await deployAgent({ ...kvm, logUrl: logs.url });
    t.equal(first.hostKey, sshd.hostKey, 'the host key seen is returned');
    const keygen = execFileSync('ssh-keygen', ['-lf', '-'], { input: `${sshd.hostKey}\n` })
      .toString()
      .split(' ')[1];
    t.equal(fingerprint(first.hostKey), keygen, 'fingerprints as ssh-keygen prints them');
    t.match(first.tasks[1].details, keygen);
    t.equal(first.agentUrl, `http://127.0.0.1:${kvm.agentPort}`);
    t.equal(first.changed, true);
    t.match(first.platform, { arch: process.arch === 'x64' ? 'x86_64' : String, osId: String, systemd: Boolean });
    for (const task of TASK_NAMES) {
      const lines = first.tasks.filter((l) => l.task === task).map((l) => l.status);
      // Node.js 20 is already on this host, so the runtime check is the one task with nothing to do.
      t.same(lines, ['start', task === 'check-runtime' ? 'skip' : 'done'], `${task}: start then ${lines[1]}`);
    }
    t.same(logs.received, first.tasks, 'the log URL received exactly the returned lines, in order');
    t.match(first.tasks[0], { host: '127.0.0.1', task: 'connect', status: 'start', level: 'INFO', details: String, durationMs: 0 });

    const echo = await post(`${first.agentUrl}/host/echo`);
    t.equal(echo.status, 200, 'the deployed agent answers its echo');
    const connect = await post(`${first.agentUrl}/host/connect`, { hostUuid: 'host-1' }, 'first-secret');
    t.equal(connect.body.success, true, 'the agent took the deployed secret');
    t.equal((await post(`${first.agentUrl}/host/connect`, { hostUuid: 'host-1' }, 'wrong')).status, 401);
    t.match(readFileSync(join(kvmRoot, 'etc', 'agent.env'), 'utf8'), /ZSTACK_MANAGEMENT_URL='http:\/\/127\.0\.0\.1:8080\/zstack'/);
  });

  t.test('redeploy with nothing changed skips every task, quickly', async (t) => {
    const started = performance.now();
    const startedTasks = [] as string[];
    const again = await deployAgent({
      ...kvm,
      knownHostKey: first!.hostKey,
      onTask: (task) => startedTasks.push(`${task.index + 1}/${task.total} ${task.name}`),
    });
    const ms = performance.now() - started;
    t.same(
      statuses(again.tasks),
      TASK_NAMES.map((task) => `${task}:skip`),
    );
    t.equal(again.changed, false);
    t.same(
      startedTasks,
      TASK_NAMES.map((task, i) => `${i + 1}/${TASK_NAMES.length} ${task}`),
      'onTask named each task as it started (progress)',
    );
    // The target is well under 300 ms on an idle machine: a figure of bench/deploy, not an assertion here.
    t.comment(`no-change redeploy took ${ms.toFixed(0)} ms`);

    const byKey = await deployAgent({ ...kvm, password: undefined, privateKey: sshd.privateKey, knownHostKey: first!.hostKey });
    t.same(
      statuses(byKey.tasks),
      TASK_NAMES.map((task) => `${task}:skip`),
      'private-key auth: everything skipped as well',
    );

    const deadLog = await deployAgent({ ...kvm, knownHostKey: first!.hostKey, logUrl: `http://127.0.0.1:${await freePort()}/log` });
    t.equal(deadLog.logPostFailures, TASK_NAMES.length * 2, 'a dead log URL costs log lines, never the deploy');
  });

  t.test('a killed agent is restarted by the next deploy', async (t) => {
    const pid = Number(readFileSync(join(kvmRoot, 'run', 'agent.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitUntil(async () => (await post(`${first!.agentUrl}/host/echo`).catch(() => undefined)) === undefined);
    const again = await deployAgent({ ...kvm, knownHostKey: first!.hostKey });
    t.same(statuses(again.tasks), [
      'connect:skip',
      'detect-os:skip',
      'check-runtime:skip',
      'upload-bundle:skip',
      'write-config:skip',
      'install-service:skip',
      'restart-agent:done',
      'wait-echo:done',
    ]);
    t.match(again.tasks.find((l) => l.task === 'restart-agent' && l.status === 'done')!.details, /the agent was not running/);
    t.equal((await post(`${first!.agentUrl}/host/echo`)).status, 200);
    t.not(Number(readFileSync(join(kvmRoot, 'run', 'agent.pid'), 'utf8')), pid, 'a new process');
  });

  t.test('a changed secret rewrites the config and restarts; the bundle stays', async (t) => {
    const nasty = `it's a "$ecret" with \`backticks\` and \\ spaces`;
    kvm.secret = nasty;
    const again = await deployAgent({ ...kvm, knownHostKey: first!.hostKey });
    t.same(statuses(again.tasks), [
      'connect:skip',
      'detect-os:skip',
      'check-runtime:skip',
      'upload-bundle:skip',
      'write-config:done',
      'install-service:skip',
      'restart-agent:done',
      'wait-echo:done',
    ]);
    t.notOk(JSON.stringify(again.tasks).includes('ecret"'), 'the secret is never logged');
    t.equal((await post(`${again.agentUrl}/host/connect`, { hostUuid: 'h' }, nasty)).body.success, true, 'the secret survives shell quoting');
    t.equal((await post(`${again.agentUrl}/host/connect`, { hostUuid: 'h' }, 'first-secret')).status, 401);
  });

  t.test('wrong password: one clear error naming the connect task, no retry', async (t) => {
    const err = await deployError({ ...kvm, password: 'not-the-password' });
    t.equal(err.task, 'connect');
    t.equal(err.host, '127.0.0.1');
    t.match(err.error, { code: 'HOST.1003', description: String, cause: { code: 'SYS.1006' } });
    t.match(err.message, /task connect failed on host 127\.0\.0\.1: authentication failed for .*@127\.0\.0\.1:\d+ \(password rejected\)/);
    t.same(statuses(err.tasks), ['connect:fail'], 'not retried');
  });

  t.test('unreachable port: connection refused, named', async (t) => {
    const err = await deployError({ ...kvm, port: await freePort() });
    t.equal(err.task, 'connect');
    t.match(err.error.details, /connection refused/);
  });

  t.test('a failing task names itself, its exit code and the tail of its stderr', async (t) => {
    const aFile = join(sshd.home, 'a-file');
    writeFileSync(aFile, 'not a directory\n');
    const err = await deployError({ ...kvm, installRoot: join(aFile, 'root') });
    t.equal(err.task, 'detect-os');
    t.equal(err.exitCode, 1);
    t.match(err.stderrTail, /mkdir: cannot create directory .*a-file.*: Not a directory/);
    t.match(err.error.cause!.details, /task detect-os failed on host 127\.0\.0\.1: recording the platform failed; exit code 1; stderr:\nmkdir: /);
    t.match(err.tasks.at(-1), { task: 'detect-os', status: 'fail', level: 'ERROR' });
  });

  t.test('a different host key is refused', async (t) => {
    const other = ssh2.utils.generateKeyPairSync('ed25519').public;
    const err = await deployError({ ...kvm, knownHostKey: other });
    t.equal(err.task, 'connect');
    t.match(err.error.details, /host key mismatch for 127\.0\.0\.1:\d+: the host offered SHA256:\S+, the recorded key is SHA256:\S+/);
    t.same(statuses(err.tasks), ['connect:fail'], 'not retried');
  });

  t.test('a connection reset is retried with backoff', async (t) => {
    const proxy = await resetFirstConnection(t, sshd.port);
    const again = await deployAgent({ ...kvm, port: proxy.port, knownHostKey: first!.hostKey });
    t.equal(proxy.connections(), 2);
    t.match(
      again.tasks.find((l) => l.status === 'fail'),
      { task: 'connect', level: 'WARN', details: /ECONNRESET.*retrying in \d+ ms \(attempt 2 of 3\)/ },
    );
    t.same(
      statuses(again.tasks).slice(1),
      TASK_NAMES.map((task) => `${task}:skip`),
    );
  });

  t.test('a connection cut in the middle of the upload: retried, and the retry finishes the job', async (t) => {
    const proxy = await cutFirstConnectionAfter(t, sshd.port, 400 * 1024);
    const root = join(sshd.home, 'kvm-cut');
    const result = await deployAgent({ ...kvm, installRoot: root, agentPort: await freePort(), port: proxy.port });
    t.equal(proxy.connections(), 2);
    t.match(
      result.tasks.find((l) => l.status === 'fail'),
      { task: 'upload-bundle', level: 'WARN', details: /SSH connection .* was lost.*retrying/ },
    );
    t.match(result.tasks.filter((l) => l.status !== 'start').at(-1), { task: 'wait-echo', status: 'done' });
    t.same(readdirSync(join(root, 'bundle')).sort(), ['openapi', 'zstack-agent.mjs'], 'no temp file left behind');
    t.equal((await post(`${result.agentUrl}/host/echo`)).status, 200);
  });

  t.test('the deadline ends a deploy that hangs, as SYS.1001', async (t) => {
    const silent = await silentServer(t);
    const started = performance.now();
    const err = await deployError({ ...kvm, port: silent.port, timeoutMs: 300 });
    t.ok(performance.now() - started < 2000, 'stopped at the deadline');
    t.equal(err.task, 'connect');
    t.match(err.error, { code: 'HOST.1003', cause: { code: 'SYS.1001', details: /the deadline ran out/ } });
  });

  t.test('deployMany: several kinds at once with a bound; one failure stays its own', async (t) => {
    const targets: DeployOptions[] = [
      { ...login(sshd), kind: 'backup-storage', installRoot: join(sshd.home, 'bs'), agentPort: await freePort(), agentListenHost: '127.0.0.1', secret: 's' },
      { ...login(sshd), kind: 'console-proxy', installRoot: join(sshd.home, 'cp'), agentPort: await freePort(), agentListenHost: '127.0.0.1', secret: 's' },
      { ...login(sshd), kind: 'virtual-router', installRoot: join(sshd.home, 'vr'), agentPort: await freePort(), agentListenHost: '127.0.0.1', secret: 's' },
      { ...kvm, installRoot: join(sshd.home, 'kvm2'), password: 'wrong' },
    ];
    const outcomes = await deployMany(targets, { concurrency: 2 });
    t.same(
      outcomes.map((o) => o.ok),
      [true, true, true, false],
    );
    const [bs, cp, vr, bad] = outcomes;
    if (bs.ok) t.equal((await post(`${bs.result.agentUrl}/backupstorage/echo`)).status, 200);
    if (cp.ok) t.equal((await post(`${cp.result.agentUrl}/console/echo`)).status, 200);
    if (vr.ok) t.equal((await post(`${vr.result.agentUrl}/virtualrouter/echo`)).status, 200);
    if (!bad.ok) t.match(bad.error, { task: 'connect', error: { code: 'HOST.1003' } });
  });
}

function login(sshd: TestSshd) {
  return { host: sshd.host, port: sshd.port, username: sshd.username, password: sshd.password };
}

function statuses(tasks: TaskLog[]): string[] {
  return tasks.filter((l) => l.status !== 'start').map((l) => `${l.task}:${l.status}`);
}

async function deployError(opts: DeployOptions): Promise<DeployError> {
  try {
    await deployAgent(opts);
  } catch (err) {
    if (err instanceof DeployError) return err;
    throw err;
  }
  throw new Error('the deploy was expected to fail');
}

async function post(url: string, body: unknown = {}, secret?: string): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (secret) headers.authorization = `Bearer ${secret}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A tiny log receiver, like the management server's per-host deploy log endpoint. */
async function logServer(t: Test): Promise<{ url: string; received: TaskLog[] }> {
  const received: TaskLog[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      received.push(JSON.parse(text));
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/deploy-log`, received };
}

/** A TCP proxy to sshd that resets the first connection at once: a transient network failure. */
function resetFirstConnection(t: Test, sshPort: number) {
  return faultyProxy(t, sshPort, (client) => void client.resetAndDestroy());
}

/** A TCP proxy to sshd that cuts the first connection once `bytes` went from the client to sshd. */
function cutFirstConnectionAfter(t: Test, sshPort: number, bytes: number) {
  return faultyProxy(t, sshPort, (client, upstream) => {
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (sent > bytes) {
        client.resetAndDestroy();
        upstream.destroy();
      }
    });
    pipe(client, upstream);
  });
}

async function faultyProxy(
  t: Test,
  sshPort: number,
  first: (client: net.Socket, upstream: net.Socket) => void,
): Promise<{ port: number; connections(): number }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(sshPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    if (++count === 1) first(client, upstream);
    else pipe(client, upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => count };
}

function pipe(client: net.Socket, upstream: net.Socket): void {
  client.pipe(upstream).pipe(client);
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}

/** Accepts TCP connections and never says a word: an SSH handshake that hangs. */
async function silentServer(t: Test): Promise<{ port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port };
}
