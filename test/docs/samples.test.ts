// The code samples of the API docs (x-codeSamples, from openapi/scripts/samples.mjs) cannot lie: every operation has
// curl, TypeScript SDK and zstack-cli samples; every TypeScript sample type-checks against the SDK (tsc --strict); and
// a representative set — log-in, version, zone create/query/update/delete, VM create/stop, network services — is run
// in all three forms against a live server, rendered by the same code with the live server's uuids.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { loadSpec } from '../../server/src/core/spec.js';
import { OPERATIONS } from '../../sdk/src/generated/operations.js';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
// @ts-expect-error -- a plain .mjs module of the generator, no types
import { SAMPLE_ENDPOINT, exampleValues, renderSamples, sampleOperations } from '../../openapi/scripts/samples.mjs';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const doc = loadSpec();

interface Sample {
  lang: string;
  label: string;
  source: string;
}
interface Values {
  path: Record<string, unknown>;
  query: Record<string, unknown>;
  body: Record<string, unknown>;
}
const operations = Object.values<any>(doc.paths).flatMap((item) => Object.values<any>(item));
const infoOf = new Map<string, any>(sampleOperations(doc).map((o: any) => [o.operationId, o]));

t.test('every operation has curl, TypeScript SDK and zstack-cli samples, naming real methods and APIs', async (t) => {
  t.ok(operations.length >= 100, `${operations.length} operations`);
  for (const op of operations) {
    const samples: Sample[] = op['x-codeSamples'] ?? [];
    const labels = samples.map((s) => s.label);
    if (op['x-zstack'].kind === 'poll') {
      t.same(labels, ['curl'], `${op.operationId}: curl only (the SDK and CLI poll for you)`);
      continue;
    }
    t.same(labels, ['curl', 'TypeScript SDK', 'zstack-cli'], `${op.operationId}: three samples`);
    const [curl, sdk, cli] = samples;
    t.match(curl.source, /^curl /m);
    const method = sdk.source.match(/zs\.(\w+)\(/)?.[1];
    t.equal(method, op.operationId[0].toLowerCase() + op.operationId.slice(1), `${op.operationId}: the SDK method`);
    t.ok(cli.source.startsWith(`zstack-cli ${op.operationId}`) && op.operationId in OPERATIONS, `${op.operationId}: a CLI API`);
  }
});

t.test('every TypeScript sample type-checks against the SDK (tsc --strict)', async (t) => {
  const dir = join(repo, 'test/artifacts/samples-tsc');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let n = 0;
  for (const op of operations) {
    const sdk = (op['x-codeSamples'] ?? []).find((s: Sample) => s.label === 'TypeScript SDK');
    if (!sdk) continue;
    writeFileSync(join(dir, `${op.operationId}.mts`), sdk.source + '\n');
    n++;
  }
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ extends: '../../../tsconfig.base.json', compilerOptions: { noEmit: true, skipLibCheck: true }, include: ['*.mts'] }),
  );
  const result = await run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: repo }).then(
    () => '',
    (e) => String(e.stdout) + String(e.stderr),
  );
  t.equal(result, '', `${n} samples compile`);
  t.ok(n >= 100);
});

t.test('samples run against a live server in all three forms', async (t) => {
  const s = await startServer();
  const home = mkdtempSync(join(tmpdir(), 'zstack-samples-'));
  const bin = join(home, 'bin');
  mkdirSync(bin);
  symlinkSync(join(repo, 'sdk/bin/zstack-cli.js'), join(bin, 'zstack-cli'));
  t.teardown(async () => {
    await s.close();
    rmSync(home, { recursive: true, force: true });
  });
  const port = new URL(s.url).port;
  const env: Record<string, string | undefined> = {
    ...process.env,
    HOME: home,
    PATH: `${bin}:${process.env.PATH}`,
    ZSTACK_HOST: '127.0.0.1',
    ZSTACK_PORT: port,
  };
  let file = 0;

  /** The operation's samples, rendered by the generator's own code, with `override` on top of the example values. */
  const samplesFor = (operationId: string, override: Partial<Values> = {}): Record<string, string> => {
    const info = infoOf.get(operationId);
    const base: Values = exampleValues(doc, info);
    const values = { path: { ...base.path, ...override.path }, query: { ...base.query, ...override.query }, body: { ...base.body, ...override.body } };
    return Object.fromEntries(renderSamples(info, values).map((x: Sample) => [x.label, x.source.split(SAMPLE_ENDPOINT).join(s.url)]));
  };
  const runSdk = async (source: string) => {
    const path = join(repo, 'test/artifacts', `sample-${process.pid}-${file++}.mts`);
    mkdirSync(join(repo, 'test/artifacts'), { recursive: true });
    writeFileSync(path, source);
    try {
      return (await run(process.execPath, ['--import', 'tsx', path], { cwd: repo, env, timeout: 60_000 })).stdout;
    } finally {
      rmSync(path, { force: true });
    }
  };
  const runShell = async (source: string) => (await run('bash', ['-euo', 'pipefail', '-c', source], { env, timeout: 60_000 })).stdout;
  /** Runs the three forms one after the other; returns their outputs. */
  const all = async (operationId: string, override?: Partial<Values> | ((form: string) => Partial<Values>)) => {
    const out: Record<string, string> = {};
    for (const form of ['curl', 'TypeScript SDK', 'zstack-cli']) {
      const samples = samplesFor(operationId, typeof override === 'function' ? override(form) : override);
      out[form] = form === 'TypeScript SDK' ? await runSdk(samples[form]) : await runShell(samples[form]);
    }
    return out;
  };
  const json = (text: string) => JSON.parse(text);

  // Log in: curl's reply gives the session the other curl samples use; the CLI keeps its own in $HOME.
  const login = await all('LogInByAccount');
  env.SESSION = json(login.curl).inventory.uuid;
  t.match(env.SESSION, /^[0-9a-f]{32}$/, 'curl: a session');
  t.match(login['TypeScript SDK'], /accountUuid/, 'SDK: the session inventory');
  t.equal(json(login['zstack-cli']).success, true, 'CLI: logged in');

  const version = await all('GetVersion');
  for (const [form, out] of Object.entries(version)) t.match(out, /version/, `GetVersion (${form})`);

  // CreateZone three times (its example name), then QueryZone's sample (the same name) finds all three.
  const created = await all('CreateZone');
  t.equal(json(created.curl).inventory.name, 'zone1', 'curl created zone1');
  t.match(created['TypeScript SDK'], /name: 'zone1'/, 'the SDK created zone1');
  t.equal(json(created['zstack-cli']).inventory.name, 'zone1', 'the CLI created zone1');
  const zones = (await s.client.queryZone({ q: ['name=zone1'] })).inventories!;
  t.equal(zones.length, 3);
  const query = await all('QueryZone');
  t.equal(json(query.curl).inventories.length, 3, 'curl: QueryZone finds them');
  t.equal(query['TypeScript SDK'].match(/name: 'zone1'/g)?.length, 3, 'SDK: QueryZone finds them');
  t.equal(json(query['zstack-cli']).inventories.length, 3, 'CLI: QueryZone finds them');

  const zoneOf = (form: string) => zones[['curl', 'TypeScript SDK', 'zstack-cli'].indexOf(form)].uuid;
  const updated = await all('UpdateZone', (form) => ({ path: { uuid: zoneOf(form) } }));
  t.equal(json(updated.curl).inventory.name, 'zone-renamed');
  t.match(updated['TypeScript SDK'], /name: 'zone-renamed'/);
  t.equal(json(updated['zstack-cli']).inventory.name, 'zone-renamed');
  await all('DeleteZone', (form) => ({ path: { uuid: zoneOf(form) } }));
  t.equal((await s.client.queryZone({ q: ['name=zone-renamed'] })).inventories!.length, 0, 'DeleteZone (all three forms) deleted them');

  // A world (zone, cluster, hosts, storage, image, L3) to create VMs in, through CreateVmInstance's samples.
  const w = await buildWorld(s.client, { virtualRouter: false });
  const attach = samplesFor('AttachNetworkServiceToL3Network', {
    path: { l3NetworkUuid: w.l3NetworkUuid },
    body: { networkServices: { [w.flatProviderUuid]: ['DHCP', 'Userdata'] } },
  });
  t.match(await runSdk(attach['TypeScript SDK']), /networkServices/, 'AttachNetworkServiceToL3Network (SDK)');
  const vms = await all('CreateVmInstance', {
    body: { instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] },
  });
  t.equal(json(vms.curl).inventory.state, 'Running', 'curl created a running VM');
  t.match(vms['TypeScript SDK'], /state: 'Running'/, 'the SDK created a running VM');
  t.equal(json(vms['zstack-cli']).inventory.state, 'Running', 'the CLI created a running VM');
  const running = (await s.client.queryVmInstance({ q: ['name=vm1', 'state=Running'], sort: '+createDate' })).inventories!;
  t.equal(running.length, 3);
  const stopped = await all('StopVmInstance', (form) => ({ path: { uuid: running[['curl', 'TypeScript SDK', 'zstack-cli'].indexOf(form)].uuid } }));
  t.equal(json(stopped.curl).inventory.state, 'Stopped');
  t.match(stopped['TypeScript SDK'], /state: 'Stopped'/);
  t.equal(json(stopped['zstack-cli']).inventory.state, 'Stopped');
});
