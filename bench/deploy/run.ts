// Benchmark: our SSH deployer vs ansible-playbook (bench/deploy/kvm-agent.yml) doing the same tasks against the same
// real sshd (test/lib/sshd.ts): first deploy and no-change redeploy, median of --runs; then --hosts install roots
// deployed at once with deployMany (one sshd plays every host). Needs root, openssh-server and ansible-core.
// Run: node --import tsx bench/deploy/run.ts [--runs 5] [--hosts 20]   → one JSON line on stdout.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildAgentBundle, deployAgent, deployMany, type AgentBundle, type DeployOptions } from '../../agents/src/deploy/index.js';
import { freePort, startSshd, type TestSshd } from '../../test/lib/sshd.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, hosts: { type: 'string', default: '20' } } });
const RUNS = Number(values.runs);
const HOSTS = Number(values.hosts);
const PLAYBOOK = fileURLToPath(new URL('./kvm-agent.yml', import.meta.url));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2);
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Ends the agent an install root runs (pidfile), so runs do not pile up processes. */
function stopAgent(root: string): void {
  try {
    process.kill(Number(readFileSync(join(root, 'run', 'agent.pid'), 'utf8')), 'SIGKILL');
  } catch {
    // not running
  }
}

function ansible(sshd: TestSshd, work: string, vars: Record<string, unknown>): Promise<void> {
  const inventory = join(work, 'inventory');
  writeFileSync(
    inventory,
    `[agents]\n127.0.0.1 ansible_port=${sshd.port} ansible_user=${sshd.username} ` +
      `ansible_ssh_private_key_file=${join(work, 'id')} ansible_python_interpreter=/usr/bin/python3\n`,
  );
  return new Promise((resolve, reject) => {
    execFile(
      'ansible-playbook',
      ['-i', inventory, '-e', JSON.stringify(vars), PLAYBOOK],
      {
        env: { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCAL_TEMP: join(work, 'ansible-tmp') },
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout) => (err ? reject(new Error(`ansible-playbook failed: ${err.message}\n${stdout.slice(-3000)}`)) : resolve()),
    );
  });
}

async function main(): Promise<void> {
  const sshd = await startSshd();
  const work = mkdtempSync(join(tmpdir(), 'zstack-bench-deploy-'));
  try {
    writeFileSync(join(work, 'id'), sshd.privateKey, { mode: 0o600 });
    const buildStarted = performance.now();
    const bundle: AgentBundle = await buildAgentBundle();
    const buildMs = Math.round(performance.now() - buildStarted);
    const localBundle = join(work, 'bundle');
    for (const f of bundle.files) {
      mkdirSync(dirname(join(localBundle, f.path)), { recursive: true });
      writeFileSync(join(localBundle, f.path), f.content);
    }
    const login = { host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.privateKey };
    const target = async (name: string): Promise<DeployOptions> => ({
      ...login,
      kind: 'kvm',
      installRoot: join(sshd.home, name),
      agentPort: await freePort(),
      agentListenHost: '127.0.0.1',
      secret: 'bench',
      bundle,
    });

    // Ours: each first deploy on a fresh install root; redeploys on the last one.
    const oursFirst: number[] = [];
    let last: DeployOptions | undefined;
    let hostKey = '';
    for (let i = 0; i < RUNS; i++) {
      if (last) stopAgent(last.installRoot!);
      last = await target(`ours-${i}`);
      const opts = last;
      oursFirst.push(await timed(async () => (hostKey = (await deployAgent(opts)).hostKey)));
    }
    const oursRedeploy: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const opts = { ...last!, knownHostKey: hostKey };
      oursRedeploy.push(
        await timed(async () => {
          const r = await deployAgent(opts);
          if (r.changed) throw new Error('a no-change redeploy changed something');
        }),
      );
    }
    stopAgent(last!.installRoot!);

    // Ansible: the same, with ansible-playbook's defaults (OpenSSH ControlPersist keeps a connection between runs).
    const ansibleFirst: number[] = [];
    let vars: Record<string, unknown> | undefined;
    for (let i = 0; i < RUNS; i++) {
      if (vars) stopAgent(String(vars.install_root));
      vars = { install_root: join(sshd.home, `ansible-${i}`), agent_port: await freePort(), secret: 'bench', local_bundle: localBundle };
      const v = vars;
      ansibleFirst.push(await timed(() => ansible(sshd, work, v)));
    }
    const ansibleRedeploy: number[] = [];
    for (let i = 0; i < RUNS; i++) ansibleRedeploy.push(await timed(() => ansible(sshd, work, vars!)));
    stopAgent(String(vars!.install_root));

    // Many hosts at once (one sshd, one install root and agent port per "host").
    const many = await Promise.all(Array.from({ length: HOSTS }, (_, i) => target(`many-${i}`)));
    let failed = 0;
    const manyFirst = await timed(async () => (failed = (await deployMany(many, { concurrency: HOSTS })).filter((o) => !o.ok).length));
    const manyRedeploy = await timed(() =>
      deployMany(
        many.map((m) => ({ ...m, knownHostKey: hostKey })),
        { concurrency: HOSTS },
      ),
    );
    for (const m of many) stopAgent(m.installRoot!);

    const result = {
      runs: RUNS,
      bundle: { bytes: bundle.bytes, buildMs },
      ours: { firstMs: median(oursFirst), redeployMs: median(oursRedeploy), first: oursFirst.map(Math.round), redeploy: oursRedeploy.map(Math.round) },
      ansible: {
        firstMs: median(ansibleFirst),
        redeployMs: median(ansibleRedeploy),
        first: ansibleFirst.map(Math.round),
        redeploy: ansibleRedeploy.map(Math.round),
      },
      ratio: {
        first: +(median(ansibleFirst) / median(oursFirst)).toFixed(1),
        redeploy: +(median(ansibleRedeploy) / median(oursRedeploy)).toFixed(1),
      },
      parallel: { hosts: HOSTS, firstMs: Math.round(manyFirst), redeployMs: Math.round(manyRedeploy), failed },
      loadavg: loadavg().map((l) => +l.toFixed(2)),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await sshd.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
