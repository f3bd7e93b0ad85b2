// The packages as a user gets them: `npm pack` of @zstack-ts/sdk and @zstack-ts/pulumi (contents checked), installed
// from the tarballs into fresh projects in a temp folder (an ES module project, and a default `pulumi new typescript`
// project, which is CommonJS), then used with plain `node` (no tsx) against a started server, the CLI from
// node_modules/.bin, `tsc --strict` on correct calls (must compile) and on wrong ones (must not), and the Pulumi
// program run by the project's own @pulumi/pulumi (language host half and dynamic-provider plugin) against the test
// engine. Dependencies (axios, @pulumi/pulumi, …) come from the npm cache, or from the registry when not cached.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, type TestServer } from '../lib/harness.js';
import { ensureBuilt, PACKAGES, REPO } from '../lib/packages.js';
import { MiniEngine } from '../pulumi/lib/mini-engine.js';
import { pluginEnv } from '../pulumi/lib/plugin-host.js';

const run = promisify(execFile);
const TSC = createRequire(join(REPO, 'package.json')).resolve('typescript/bin/tsc');
const TS_VERSION = (createRequire(join(REPO, 'package.json'))('typescript/package.json') as { version: string }).version;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}
async function sh(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<Out> {
  try {
    const r = await run(cmd, args, { cwd: opts.cwd, env: pluginEnv(opts.env), maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}
const node = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) => sh(process.execPath, args, { cwd, env });
const write = (dir: string, files: Record<string, string | object>) => {
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`);
};

// Packing, two installs, three type-checks and a Pulumi run: more than the suite's 300 s per file on a loaded machine.
t.setTimeout(900_000);

const work = mkdtempSync(join(tmpdir(), 'zstack-packages-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const npmCheck = await sh('npm', ['--version'], { cwd: work }).catch(() => undefined);
if (!npmCheck || npmCheck.code !== 0) {
  t.pass('skipped', { skip: 'npm is not on PATH: cannot pack and install the packages' });
} else {
  t.test('the packages as a user gets them', main);
}

async function main(t: Test) {
  await ensureBuilt('pulumi'); // and the SDK

  // ---- npm pack ------------------------------------------------------------------------------------------------
  const tarballs: Record<string, string> = {};
  for (const [name, p] of Object.entries(PACKAGES)) {
    await t.test(`npm pack: ${name}`, async (t) => {
      const r = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: p.dir });
      t.equal(r.code, 0, r.stderr);
      const [info] = JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
      tarballs[name] = join(work, info.filename);
      const files = info.files.map((f) => f.path);
      const must = ['LICENSE', 'README.md', 'package.json'];
      for (const f of ['esm', 'cjs']) must.push(`dist/${f}/package.json`, `dist/${f}/index.js`, `dist/${f}/index.d.ts`, `dist/${f}/index.js.map`);
      if (name === 'sdk')
        must.push(
          'bin/zstack-cli.js',
          'dist/esm/cli/main.js',
          'dist/cjs/cli/main.js',
          'dist/esm/generated/api.d.ts',
          'dist/esm/generated/openapi-helpers.d.ts',
        );
      else must.push('dist/esm/runtime/index.js', 'dist/cjs/runtime/index.js');
      for (const f of must) t.ok(files.includes(f), `the tarball has ${f}`);
      const stray = files.filter((f) => /^(src|test|\.build)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
      t.same(stray, [], 'no TypeScript sources, tests or build leftovers');
      const manifest = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8'));
      t.equal(manifest.license, 'Apache-2.0');
      t.match(readFileSync(join(p.dir, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
      const deps = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies });
      t.notOk(
        deps.some((d) => d === '@zstack-ts/openapi' || d === 'tsx'),
        `no private workspace or loader among the dependencies (${deps.join(', ')})`,
      );
      for (const f of files.filter((f) => f.endsWith('.d.ts') || f.endsWith('.js'))) {
        if (readFileSync(join(p.dir, f), 'utf8').includes('@zstack-ts/openapi')) t.fail(`${f} refers to the private @zstack-ts/openapi`);
      }
      if (name === 'pulumi') {
        t.match(manifest.peerDependencies, { '@pulumi/pulumi': /^\^3\./ }, '@pulumi/pulumi is a peer dependency');
        t.notOk(manifest.dependencies?.['@pulumi/pulumi'], 'and not a dependency (one copy, the project’s)');
      }
    });
  }
  if (Object.keys(tarballs).length !== 2) return;

  // ---- fresh projects, installed from the tarballs ----------------------------------------------------------------
  const esm = join(work, 'esm-app');
  const pul = join(work, 'pulumi-app');
  mkdirSync(esm);
  mkdirSync(pul);
  write(esm, {
    'package.json': {
      name: 'esm-app',
      private: true,
      type: 'module',
      dependencies: { '@zstack-ts/sdk': `file:${tarballs.sdk}` },
      devDependencies: { '@types/node': '^20' },
    },
  });
  // As `pulumi new typescript` makes it (package.json, tsconfig.json, Pulumi.yaml, index.ts), plus our package;
  // @pulumi/pulumi pinned to the last release that supports Node 20.
  write(pul, {
    'package.json': {
      name: 'pulumi-app',
      main: 'index.ts',
      devDependencies: { '@types/node': '^20', typescript: `~${TS_VERSION}` },
      dependencies: { '@pulumi/pulumi': '~3.248.0', '@zstack-ts/pulumi': `file:${tarballs.pulumi}`, '@zstack-ts/sdk': `file:${tarballs.sdk}` },
    },
    'tsconfig.json': {
      compilerOptions: {
        strict: true,
        outDir: 'bin',
        target: 'es2020',
        module: 'commonjs',
        moduleResolution: 'node',
        sourceMap: true,
        experimentalDecorators: true,
        pretty: true,
        noFallthroughCasesInSwitch: true,
        noImplicitReturns: true,
        forceConsistentCasingInFileNames: true,
      },
      files: ['index.ts'],
    },
    'Pulumi.yaml': 'name: pulumi-app\ndescription: A default TypeScript project using @zstack-ts/pulumi\nruntime:\n  name: nodejs\n',
  });
  let installed = true;
  await t.test('npm install from the tarballs', async (t) => {
    const rs = await Promise.all([esm, pul].map((cwd) => sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd })));
    for (const [i, r] of rs.entries()) {
      if (r.code !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH/.test(r.stderr)) {
        installed = false;
        t.pass('skipped', { skip: `npm install needs the registry for what the npm cache lacks, and it is unreachable: ${r.stderr.split('\n')[0]}` });
        return;
      }
      t.equal(r.code, 0, `install ${i === 0 ? 'esm-app' : 'pulumi-app'}: ${r.stderr}`);
    }
    const pulumis = (readdirSync(join(pul, 'node_modules', '@zstack-ts', 'pulumi')).includes('node_modules') &&
      readdirSync(join(pul, 'node_modules', '@zstack-ts', 'pulumi', 'node_modules')).includes('@pulumi')) as boolean;
    t.notOk(pulumis, 'one @pulumi/pulumi: the project’s (no nested copy under @zstack-ts/pulumi)');
    t.notOk(statSync(join(pul, 'node_modules', '@pulumi', 'pulumi')).isSymbolicLink(), 'a real install, not a link into the workspace');
  });
  if (!installed || t.counts.fail) return;

  const s: TestServer = await startServer();
  t.teardown(() => s.close());
  const env = { ZS_URL: s.url };

  // ---- plain node --------------------------------------------------------------------------------------------------
  const program = (importLine: string) => `${importLine}
async function run() {
  const zs = new ZStackClient({ endpoint: process.env.ZS_URL, accountName: 'admin', password: 'password' });
  const name = 'pkg-' + process.argv[2];
  const zone = (await zs.createZone({ name })).inventory;
  const found = (await zs.queryZone({ q: { name }, fields: ['uuid', 'name'] })).inventories;
  let error;
  try {
    await zs.createZone({});
  } catch (e) {
    error = { isZStackError: e instanceof ZStackError, code: e.code, httpStatus: e.httpStatus };
  }
  await zs.logout();
  return { zone: zone.uuid, found, error };
}
run().then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e); process.exitCode = 1; });
`;

  await t.test('ES module project: import with plain node', async (t) => {
    write(esm, { 'main.js': program("import { ZStackClient, ZStackError } from '@zstack-ts/sdk';") });
    const r = await node(['main.js', 'esm'], esm, env);
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    t.match(out, { zone: /^[0-9a-f]{32}$/, error: { isZStackError: true, code: 'SYS.1007', httpStatus: 400 } });
    t.same(out.found, [{ uuid: out.zone, name: 'pkg-esm' }]);
  });

  await t.test('CommonJS project: require with plain node', async (t) => {
    write(pul, { 'main.js': program("const { ZStackClient, ZStackError } = require('@zstack-ts/sdk');") });
    const r = await node(['main.js', 'cjs'], pul, env);
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    t.match(out, { zone: /^[0-9a-f]{32}$/, error: { isZStackError: true, code: 'SYS.1007' } });
    t.same(out.found, [{ uuid: out.zone, name: 'pkg-cjs' }]);
  });

  await t.test('zstack-cli from node_modules/.bin', async (t) => {
    const home = join(work, 'home');
    mkdirSync(home);
    const cli = (args: string[]) =>
      sh(join(esm, 'node_modules', '.bin', 'zstack-cli'), ['-H', '127.0.0.1', '-p', new URL(s.url).port, ...args], { cwd: esm, env: { HOME: home } });
    const login = await cli(['LogInByAccount', 'accountName=admin', 'password=password']);
    t.equal(login.code, 0, login.code === 0 ? 'LogInByAccount' : login.stderr + login.stdout);
    const q = await cli(['QueryZone', 'name=pkg-esm', 'fields=name']);
    t.equal(q.code, 0, q.stderr);
    t.match(JSON.parse(q.stdout), { inventories: [{ name: 'pkg-esm' }] });
  });

  // ---- types ---------------------------------------------------------------------------------------------------
  const tsc = (args: string[], cwd: string) => node([TSC, ...args], cwd);
  const errorLines = (out: string, file: string) =>
    [...out.matchAll(new RegExp(`${file.replace('.', '\\.')}\\((\\d+),\\d+\\): error`, 'g'))].map((m) => Number(m[1]));

  await t.test('tsc --strict: correct calls compile, wrong calls do not', async (t) => {
    const good = `import { ZStackClient, ZStackError, type JobHandle, type ReplyOf } from '@zstack-ts/sdk';
const zs = new ZStackClient({ endpoint: 'http://127.0.0.1:8080', accountName: 'admin', password: 'password' });
const zone = (await zs.createZone({ name: 'z1', description: 'd' })).inventory;
const uuid: string = zone.uuid;
const l3 = await zs.queryL3Network({ q: { name: 'l3', zoneUuid: uuid, 'ipRanges.startIp': '10.0.0.1' }, fields: ['uuid', 'name'], limit: 10 });
const vms = await zs.queryVmInstance({ q: ['state=Running'], count: true });
for await (const vm of zs.queryAllVmInstance({ q: { state: ['Running', 'Stopped'], cpuNum: { '>=': 2 } } })) console.log(vm.uuid);
const job: JobHandle<'CreateZone'> = await zs.startCreateZone({ name: 'z2' });
const reply: ReplyOf<'CreateZone'> = await zs.waitJob(job);
try { await zs.deleteZone({ uuid }); } catch (e) { if (e instanceof ZStackError && e.isNotFound) console.log(e.code, e.rootCause.code); }
console.log(l3.inventories?.length, vms.total, reply.inventory.uuid);
const byName = await zs.call('CreateZone', { name: 'z3' });
const zones = await zs.call('QueryZone', { q: { name: byName.inventory.name }, fields: ['uuid'] });
console.log(zones.inventories?.[0]?.uuid);
const picked = await zs.queryZone({ q: { state: 'Enabled' }, fields: ['uuid', 'name'] });
const firstName: string | undefined = picked.inventories?.[0]?.name;
for await (const z of zs.queryAllZone({ fields: ['uuid'] })) console.log(z.uuid, firstName);
`;
    const bad = `import { ZStackClient } from '@zstack-ts/sdk';
const zs = new ZStackClient({ endpoint: 'http://127.0.0.1:8080' });
await zs.createZone({ nam: 'z1' });
await zs.createZone({});
await zs.queryL3Network({ q: { noSuchField: 'x' } });
await zs.queryZone({ fields: ['uuid', 'noSuchField'] });
const z = (await zs.createZone({ name: 'z' })).inventory; z.noSuchField;
await zs.noSuchApi();
new ZStackClient({ endpoint: 1 });
const n: number = (await zs.createZone({ name: 'z' })).inventory.uuid;
await zs.call('CreateZone', { nam: 'z' });
await zs.call('QueryZone', { q: { noSuchField: 'x' } });
(await zs.queryZone({ fields: ['uuid'] })).inventories?.[0]?.name;
for await (const z of zs.queryAllZone({ fields: ['uuid'] })) z.state;
`;
    write(esm, {
      'good.ts': good,
      'bad.ts': bad,
      'tsconfig.json': { compilerOptions: { strict: true, module: 'nodenext', target: 'es2022', noEmit: true, types: ['node'] }, files: ['good.ts'] },
      // What a stricter user project may turn on: the SDK's own .d.ts must pass too (no skipLibCheck).
      'tsconfig.strictest.json': {
        extends: './tsconfig.json',
        compilerOptions: {
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noPropertyAccessFromIndexSignature: true,
          noImplicitOverride: true,
          noImplicitReturns: true,
          noUnusedLocals: false,
        },
      },
    });
    const [g, gs, b] = await Promise.all([
      tsc(['-p', 'tsconfig.json', '--pretty', 'false'], esm),
      tsc(['-p', 'tsconfig.strictest.json', '--pretty', 'false'], esm),
      tsc(['--strict', '--module', 'nodenext', '--target', 'es2022', '--noEmit', '--types', 'node', '--pretty', 'false', 'bad.ts'], esm),
    ]);
    t.equal(errorLines(g.stdout, 'good.ts').length + g.code, 0, `good.ts compiles under --strict:\n${g.stdout}`);
    t.equal(errorLines(gs.stdout, 'good.ts').length + gs.code, 0, `good.ts compiles under the strictest options:\n${gs.stdout}`);
    t.not(b.code, 0, 'bad.ts does not compile');
    t.same(
      [...new Set(errorLines(b.stdout, 'bad.ts'))],
      [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
      `every wrong line is an error, and only those:\n${b.stdout}`,
    );
  });

  // ---- Pulumi --------------------------------------------------------------------------------------------------
  await t.test('Pulumi: a default TypeScript (CommonJS) project declares networks with @zstack-ts/pulumi', async (t) => {
    const zone = (await s.client.createZone({ name: 'pulumi-zone' })).inventory;
    write(pul, {
      'index.ts': `import * as pulumi from '@pulumi/pulumi';
import * as zstack from '@zstack-ts/pulumi';

const config = new pulumi.Config();
const l2 = new zstack.L2Network('pkg-l2', { name: 'pkg-l2', zoneUuid: config.require('zoneUuid'), physicalInterface: 'eth9' });
const l3 = new zstack.L3Network('pkg-l3', { name: 'pkg-l3', l2NetworkUuid: l2.uuid });
const flat = zstack.getNetworkServiceProviderOutput({ type: 'Flat' });

export const l2Uuid = l2.uuid;
export const l3Uuid = l3.uuid;
export const flatProviderUuid = flat.uuid;
`,
    });
    const types = await tsc(['-p', '.', '--noEmit', '--pretty', 'false'], pul);
    t.equal(types.code, 0, `the project type-checks with its tsconfig:\n${types.stdout}`);

    const engine = new MiniEngine({
      projectDir: pul,
      stack: 'dev',
      config: {
        'zstack:endpoint': s.url,
        'zstack:accountName': 'admin',
        'zstack:password': 'password',
        'zstack:pollIntervalMs': '20',
        'pulumi-app:zoneUuid': zone.uuid,
      },
      secretKeys: ['zstack:password'],
      // The project was type-checked just above; the language host need not do it again (ts-node transpile-only).
      env: { PULUMI_NODEJS_TRANSPILE_ONLY: 'true' },
      pulumiDir: join(pul, 'node_modules', '@pulumi', 'pulumi'),
      timeoutMs: 240_000,
    });
    const up = await engine.up();
    t.ok(up.ok, `pulumi up: ${[...up.errors, ...up.diagnostics].join('\n')}`);
    const l3s = (await s.client.queryL3Network({ q: { name: 'pkg-l3' } })).inventories ?? [];
    t.equal(l3s.length, 1, 'the L3 network exists');
    t.match(up.outputs, { l3Uuid: l3s[0]?.uuid, flatProviderUuid: /^[0-9a-f]{32}$/ });
    const down = await engine.destroy();
    t.ok(down.ok, `pulumi destroy: ${[...down.errors, ...down.diagnostics].join('\n')}`);
    t.same((await s.client.queryL2Network({ q: { name: 'pkg-l2' } })).inventories, [], 'destroy removed the networks');
  });
}
