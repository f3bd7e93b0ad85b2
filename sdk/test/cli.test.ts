// zstack-cli against a live server: the release notes' syntax (LogInByAccount, queries with conditions and reserved
// keys, `fields=l2NetworkUuid, uuid=…`, JSON maps), upstream's output (sorted keys, 2-space JSON) and `-o table`,
// ErrorCodes with a non-zero exit, the session file, -H/-p and ZSTACK_HOST/ZSTACK_PORT, the spinner, the interactive
// mode and its completion; then the eight commands of release notes §9 through the CLI, in the seed's shapes.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { startServer, type TestServer } from '../../test/lib/harness.js';
import { buildWorld } from '../../test/lib/world.js';
import { hashPassword } from '../src/index.js';
import { runCli, scrubPasswords } from '../src/cli/main.js';
import { complete, parseCommand, splitList, tokenize } from '../src/cli/args.js';
import { toJson, toTable } from '../src/cli/format.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/zstack-cli.js');

interface Result {
  code: number;
  out: string;
  err: string;
  json: any;
}

/** Runs zstack-cli in this process with its own HOME (so its session file is its own). */
function cliFor(s: TestServer, home: string) {
  const port = new URL(s.url).port;
  return async (argv: string[], opts: { tty?: boolean; stdin?: string[]; env?: Record<string, string> } = {}): Promise<Result> => {
    let out = '';
    let err = '';
    const code = await runCli({
      argv,
      env: { HOME: home, ZSTACK_HOST: '127.0.0.1', ZSTACK_PORT: port, ...opts.env },
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s), isTTY: opts.tty },
      stdin: opts.stdin ? Readable.from(opts.stdin) : undefined,
    });
    let json: unknown;
    try {
      json = JSON.parse(out);
    } catch {
      json = undefined;
    }
    return { code, out, err, json };
  };
}

/** A line as typed at the `>>>` prompt (or in a shell), split as the shell splits it. */
const line = (text: string) => tokenize(text);

t.test('parsing, formatting and completion (no server)', async (t) => {
  t.same(tokenize(`QueryL3Network fields=l2NetworkUuid, uuid=1a82`), ['QueryL3Network', 'fields=l2NetworkUuid,', 'uuid=1a82']);
  t.same(tokenize(`X networkServices='{"5d21":["DHCP","DNS"]}' name="a b" c=d\\ e`), ['X', 'networkServices={"5d21":["DHCP","DNS"]}', 'name=a b', 'c=d e']);
  t.throws(() => tokenize(`X a='b`), /unterminated/);
  t.same(splitList('a,b\\,c,,d,'), ['a', 'b,c', 'd']);

  t.same(parseCommand(line('QueryL3Network fields=l2NetworkUuid, uuid=1a82')), {
    apiName: 'QueryL3Network',
    params: { fields: 'l2NetworkUuid', q: ['uuid=1a82'] },
    timeoutMs: undefined,
  });
  t.same(
    parseCommand(
      line(
        'QueryVmInstance vmNics.ip!?=a,b name~=web cpuNum>=2 memorySize<4 description=null hostUuid!=null state?=Running,Stopped count=true limit=10 start=5 sortBy=name sortDirection=desc replyWithCount=true timeout=30',
      ),
    ).params,
    {
      q: ['vmNics.ip!?=a,b', 'name~=%web%', 'cpuNum>=2', 'memorySize<4', 'description is null', 'hostUuid not null', 'state?=Running,Stopped'],
      count: true,
      limit: 10,
      start: 5,
      sortBy: 'name',
      sortDirection: 'desc',
      replyWithCount: true,
    },
  );
  t.equal(parseCommand(line('QueryZone timeout=30')).timeoutMs, 30_000);
  t.same(parseCommand(line('APIQueryZoneMsg name~=a%')).params, { q: ['name~=a%'] }, 'API…Msg names work; a wildcard is kept');
  t.same(parseCommand(line(`DetachNetworkServiceFromL3Network l3NetworkUuid=u1 networkServices='{"p1":["DHCP","DNS"]}'`)).params, {
    l3NetworkUuid: 'u1',
    networkServices: { p1: ['DHCP', 'DNS'] },
  });
  t.same(
    parseCommand(line(`AttachNetworkServiceToL3Network l3NetworkUuid=u1 networkServices="{'p1':['DHCP']}"`)).params.networkServices,
    { p1: ['DHCP'] },
    "upstream's Python-literal quotes",
  );
  t.same(parseCommand(line('CreateInstanceOffering name=s cpuNum=2 memorySize=1073741824 systemTags=a,b')).params, {
    name: 's',
    cpuNum: 2,
    memorySize: 1073741824,
    systemTags: ['a', 'b'],
  });
  t.same(parseCommand(line('CreateZone name=z isDefault=TRUE')).params, { name: 'z', isDefault: true });
  t.throws(() => parseCommand(line('CreateInstanceOffering name=s cpuNum=two memorySize=1')), /cpuNum must be an integer, got \[two\]/);
  t.throws(() => parseCommand(line('CreateZone name=z colour=red')), /unknown parameter colour \(parameters: name, description/);
  t.throws(() => parseCommand(line('CreateZone description=d')), /missing required parameter name/);
  t.throws(
    () => parseCommand(line('AttachNetworkServiceToL3Network l3NetworkUuid=u networkServices=DHCP')),
    /must be a JSON object, e\.g\. networkServices='\{"<networkServiceProviderUuid>":\["DHCP","DNS"\]\}'/,
  );
  t.throws(() => parseCommand(line('QueryZon')), /unknown API QueryZon; did you mean QueryZone/);
  t.throws(() => parseCommand(line('QueryZone justaword')), /neither a condition/);

  const reply = { success: true, inventories: [{ uuid: 'u', name: 'z', dns: ['8.8.8.8'], ipRanges: [{ b: 1, a: 2 }] }] };
  t.equal(
    toJson(reply),
    '{\n  "inventories": [\n    {\n      "dns": [\n        "8.8.8.8"\n      ],\n      "ipRanges": [\n        {\n          "a": 2,\n          "b": 1\n        }\n      ],\n      "name": "z",\n      "uuid": "u"\n    }\n  ],\n  "success": true\n}',
  );
  t.equal(toTable(reply), 'dns      ipRanges  name  uuid\n-------  --------  ----  ----\n8.8.8.8  [1]       z     u');
  t.equal(
    toTable(reply, ['uuid', 'name', 'noSuchField']),
    'uuid  name  dns      ipRanges\n----  ----  -------  --------\nu     z     8.8.8.8  [1]',
    'fields= order first',
  );
  t.equal(toTable({ success: true, total: 3 }), 'total: 3');
  t.equal(toTable({ success: true }), 'success');
  t.match(toTable({ success: true, inventory: { uuid: 'u', name: 'z' } }), /^field +value\n-+ +-+\nname +z\nuuid +u$/);

  t.same(complete('QueryL3Net')[0], ['QueryL3Network '], 'API names');
  t.ok(complete('')[0].length > 90, 'every API at an empty prompt');
  t.same(complete('CreateZone na'), [['name='], 'na'], 'parameter names');
  t.same(complete('CreateZone name=z ')[0].includes('name='), false, 'parameters given are not offered again');
  t.same(complete('QueryVmInstance vmN')[0], ['vmNics.'], 'joins complete one level at a time');
  t.ok(complete('QueryVmInstance vmNics.')[0].includes('vmNics.ip='));
  t.same(complete('QueryL3Network fields=uuid,l2')[0], ['fields=uuid,l2NetworkUuid'], 'fields= values');
  t.ok(complete('QueryZone ')[0].includes('count='), 'reserved keys');
  t.same(complete('help Create')[0].slice(0, 2), ['CreateAccount', 'CreateCluster']);
  t.equal(scrubPasswords(`LogInByAccount accountName=admin password=secret`), 'LogInByAccount accountName=admin password=******');
  t.equal(scrubPasswords(`X password='a b' y=1`), 'X password=****** y=1');
});

t.test('zstack-cli against a server', async (t) => {
  const s = await startServer();
  const home = mkdtempSync(join(tmpdir(), 'zstack-cli-home-'));
  t.teardown(async () => {
    await s.close();
    rmSync(home, { recursive: true, force: true });
  });
  const cli = cliFor(s, home);

  t.test('before login: the server says so, as an ErrorCode, exit 1', async (t) => {
    const r = await cli(['QueryZone']);
    t.equal(r.code, 1);
    t.match(r.json, { code: 'ID.1001', description: String });
    t.same(Object.keys(r.json), [...Object.keys(r.json)].sort(), 'sorted keys');
  });

  t.test('LogInByAccount hashes the password and keeps the session in ~/.zstack/cli/session', async (t) => {
    const r = await cli(line('LogInByAccount accountName=admin password=password'));
    t.equal(r.code, 0, r.out);
    t.same(Object.keys(r.json), ['inventory', 'success']);
    t.equal(r.json.success, true);
    t.match(r.json.inventory, { uuid: /^[0-9a-f]{32}$/, accountUuid: /^[0-9a-f]{32}$/ });
    const file = join(home, '.zstack', 'cli', 'session');
    t.equal(readFileSync(file, 'utf8').trim(), r.json.inventory.uuid);
    t.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only');
    const wrong = await cli(line('LogInByAccount accountName=admin password=nope'));
    t.equal(wrong.code, 1);
    t.match(wrong.json, { code: /^ID\./ });
    t.equal(readFileSync(file, 'utf8').trim(), r.json.inventory.uuid, 'a failed login keeps the session');
  });

  let zoneUuid = '';
  t.test('create, query with conditions and reserved keys, shapes as the seed', async (t) => {
    const c = await cli(line('CreateZone name=zone1 description="the first zone"'));
    t.equal(c.code, 0, c.out);
    t.same(Object.keys(c.json), ['inventory', 'success']);
    t.match(c.json.inventory, { name: 'zone1', description: 'the first zone', state: 'Enabled', uuid: /^[0-9a-f]{32}$/ });
    zoneUuid = c.json.inventory.uuid;
    for (const name of ['zone2', 'other']) t.equal((await cli(['CreateZone', `name=${name}`])).code, 0);

    // The release notes' spelling: `fields=<f>, uuid=<uuid>` — exactly the seed's output.
    const f = await cli(line(`QueryZone fields=name, uuid=${zoneUuid}`));
    t.equal(f.out, '{\n  "inventories": [\n    {\n      "name": "zone1"\n    }\n  ],\n  "success": true\n}\n');
    const q = await cli(line('QueryZone name=zone1'));
    t.same(Object.keys(q.json), ['inventories', 'success']);
    t.same(Object.keys(q.json.inventories[0]), [...Object.keys(q.json.inventories[0])].sort());
    t.same((await cli(line('QueryZone name~=zone count=true'))).json, { success: true, total: 2 }, '~= is a substring match');
    t.same((await cli(line('QueryZone name?=zone1,other sortBy=name sortDirection=desc fields=name'))).json.inventories, [
      { name: 'zone1' },
      { name: 'other' },
    ]);
    t.same((await cli(line('QueryZone name!=zone1 name!=other fields=name'))).json.inventories, [{ name: 'zone2' }]);
    t.same((await cli(line('QueryZone description=null fields=name sortBy=name limit=1 start=1'))).json.inventories, [{ name: 'zone2' }]);
    const rc = await cli(line('QueryZone replyWithCount=true limit=1'));
    t.equal(rc.json.total, 3);
    t.equal(rc.json.inventories.length, 1);
    const table = await cli(['-o', 'table', ...line('QueryZone fields=name,state sortBy=name')]);
    t.equal(table.out, 'name   state\n-----  -------\nother  Enabled\nzone1  Enabled\nzone2  Enabled\n');
    const upd = await cli(line(`UpdateZone uuid=${zoneUuid} name=zone1 description=renamed`));
    t.equal(upd.json.inventory.description, 'renamed');
    t.same((await cli(line(`ChangeZoneState uuid=${zoneUuid} stateEvent=disable`))).json.inventory.state, 'Disabled');
    t.same((await cli(line(`ChangeZoneState uuid=${zoneUuid} stateEvent=enable`))).json.inventory.state, 'Enabled');
  });

  t.test('failures print the ErrorCode and exit non-zero', async (t) => {
    const nf = await cli(line(`UpdateZone uuid=${'0'.repeat(32)} name=x`));
    t.equal(nf.code, 1);
    t.match(nf.json, { code: 'SYS.1003', description: 'Unable to find a resource', details: /0{32}/ });
    const bad = await cli(line('QueryZone nosuchfield=1'));
    t.equal(bad.code, 1);
    t.match(bad.json, { code: 'SYS.1007', details: /nosuchfield/ });
    const usage = await cli(line('CreateZone name=z colour=red'));
    t.equal(usage.code, 2, 'a usage error is exit 2');
    t.match(usage.json, { code: 'SYS.1007', description: 'One or more API argument is invalid', details: /unknown parameter colour/ });
    const unknown = await cli(['NoSuchApi']);
    t.equal(unknown.code, 2);
    t.match(unknown.json.details, /unknown API NoSuchApi/);
    const opt = await cli(['-x']);
    t.equal(opt.code, 2);
    t.match(opt.err, /unknown option -x/);
  });

  t.test('-H/-p and ZSTACK_HOST/ZSTACK_PORT; -c prints the curl; help', async (t) => {
    const port = new URL(s.url).port;
    const viaFlags = await cli(['-H', '127.0.0.1', '-p', port, 'QueryZone', 'count=true'], { env: { ZSTACK_HOST: 'nowhere.invalid', ZSTACK_PORT: '1' } });
    t.same(viaFlags.json, { success: true, total: 3 }, 'flags win over the environment');
    const wrongPort = await cli(['QueryZone', 'count=true'], { env: { ZSTACK_PORT: '1' } });
    t.equal(wrongPort.code, 1);
    t.match(wrongPort.json, { code: 'SDK.1000', details: /127\.0\.0\.1:1/ });
    const curl = await cli(['-c', 'QueryZone', 'name=zone1']);
    t.match(
      curl.err,
      new RegExp(
        `^curl -X GET 'http://127\\.0\\.0\\.1:${port}/zstack/v1/zones\\?q=name%3Dzone1' -H 'User-Agent: zstack-cli' -H 'Authorization: OAuth \\*\\*\\*' -H 'X-ZStack-Errors: direct'\n$`,
      ),
    );
    t.match((await cli(['--help'])).out, /usage: zstack-cli \[-H host\] \[-p port\]/);
    const paged: string[] = [];
    const onTerminal = await runCli({
      argv: ['help'],
      env: { HOME: home },
      stdout: { write: () => t.fail('written past the pager'), isTTY: true },
      stderr: { write: () => undefined },
      pager: (text) => paged.push(text),
    });
    t.equal(onTerminal, 0);
    t.equal(paged.length, 1, 'help goes through the pager on a terminal');
    t.match(paged[0], /CreateVmInstance/);
    t.match((await cli(line('help'))).out, /CreateVmInstance/, 'and is written as is otherwise');
    const help = await cli(line('help AttachNetworkServiceToL3Network'));
    t.match(
      help.out,
      /AttachNetworkServiceToL3Network: Attach network services to an L3 network\n  POST \/zstack\/v1\/l3-networks\/\{l3NetworkUuid\}\/network-services  \(async, default timeout 30m\)\n  l3NetworkUuid \(string\)/,
    );
    t.match(help.out, /networkServices \(object\)/);
  });

  t.test('a spinner with the download progress on a terminal, plain progress lines otherwise', async (t) => {
    const bs = (await cli(line('AddSimulatorBackupStorage name=bs1 url=/sim/bs1'))).json.inventory.uuid;
    const tty = await cli(line(`AddImage name=img1 url=http://download.zstack.org/img1.qcow2?durationMs=700 backupStorageUuids=${bs}`), { tty: true });
    t.equal(tty.code, 0);
    t.equal(tty.json.inventory.status, 'Ready');
    t.match(tty.err, /\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] AddImage \d+\.\ds/, 'spinner line on stderr');
    t.ok(tty.err.endsWith('\r\x1b[2K'), 'cleared at the end');
    const quick = await cli(line(`AddImage name=img2 url=http://download.zstack.org/img2.qcow2?durationMs=100 backupStorageUuids=${bs}`));
    t.equal(quick.err, '', 'no spinner when stderr is not a terminal; a quick job reports nothing');
    const slow = await cli(line(`AddImage name=img3 url=http://download.zstack.org/img3.qcow2?durationMs=3000 backupStorageUuids=${bs}`));
    t.equal(slow.code, 0);
    t.match(slow.err, /^AddImage: \d+%/m, 'plain progress lines when stderr is not a terminal');
    t.notMatch(slow.err, /\x1b/, 'no terminal codes in them');
  });

  t.test('interactive mode: lines from stdin, state kept between them', async (t) => {
    const r = await cli([], { stdin: ['QueryZone name=zone2 fields=name\n', '\n', 'QueryZone name=zone1 fields=name\n', 'exit\n', 'QueryZone\n'] });
    t.equal(r.code, 0);
    t.equal(
      r.out,
      toJson({ inventories: [{ name: 'zone2' }], success: true }) + '\n' + toJson({ inventories: [{ name: 'zone1' }], success: true }) + '\n',
      'exit stops reading',
    );
  });

  t.test('the bin: a real process, exit codes', async (t) => {
    const env = { ...process.env, HOME: home, ZSTACK_HOST: '127.0.0.1', ZSTACK_PORT: new URL(s.url).port };
    const ok = await run(BIN, ['QueryZone', `uuid=${zoneUuid}`, 'fields=name,'], { env });
    t.equal(ok.stdout, toJson({ inventories: [{ name: 'zone1' }], success: true }) + '\n');
    const failed = await run(BIN, ['UpdateZone', `uuid=${'1'.repeat(32)}`, 'name=x'], { env }).catch((e) => e);
    t.equal(failed.code, 1, 'exit status 1');
    t.equal(JSON.parse(failed.stdout).code, 'SYS.1003');

    const out = await run(BIN, ['LogOut'], { env });
    t.same(JSON.parse(out.stdout), { success: true });
    t.throws(() => readFileSync(join(home, '.zstack', 'cli', 'session')), 'LogOut removes the session file');
    t.equal((await cli(['QueryZone'])).json.code, 'ID.1001', 'and the session is gone');
  });
});

t.test('release notes §9 through zstack-cli, in the seed shapes', async (t) => {
  const s = await startServer();
  const home = mkdtempSync(join(tmpdir(), 'zstack-cli-home-'));
  t.teardown(async () => {
    await s.close();
    rmSync(home, { recursive: true, force: true });
  });
  const zs = s.client;
  const w = await buildWorld(zs, { hosts: 2 });
  // A user VM on the L3 brings up its virtual router, as in the seed.
  await zs.createVmInstance({ name: 'vm1', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] } as never);
  const cli = cliFor(s, home);
  const { l3NetworkUuid: l3, l2NetworkUuid: l2, virtualRouterProviderUuid: vr, flatProviderUuid: flat } = w;
  const ok = async (text: string) => {
    const r = await cli(line(text));
    t.equal(r.code, 0, `${text}\n${r.out}`);
    return r;
  };
  const keysSorted = (o: object) => t.same(Object.keys(o), [...Object.keys(o)].sort(), 'keys sorted as upstream prints them');
  const L3_KEYS = [
    'category',
    'createDate',
    'dns',
    'ipRanges',
    'l2NetworkUuid',
    'lastOpDate',
    'name',
    'networkServices',
    'state',
    'system',
    'type',
    'uuid',
    'zoneUuid',
  ];
  const PROVIDER_KEYS = ['attachedL2NetworkUuids', 'createDate', 'description', 'lastOpDate', 'name', 'networkServiceTypes', 'type', 'uuid'];

  await ok(`LogInByAccount accountName=admin password=password`);

  // 1. Obtain the UUID of the virtual router provider
  const s1 = await ok(`QueryNetworkServiceL3NetworkRef l3NetworkUuid=${l3}`);
  t.same(Object.keys(s1.json), ['inventories', 'success']);
  t.same(
    [...s1.json.inventories].sort((a: any, b: any) => a.networkServiceType.localeCompare(b.networkServiceType)),
    [
      { l3NetworkUuid: l3, networkServiceProviderUuid: vr, networkServiceType: 'DHCP' },
      { l3NetworkUuid: l3, networkServiceProviderUuid: vr, networkServiceType: 'DNS' },
    ],
  );
  t.match(
    s1.out,
    /^\{\n  "inventories": \[\n    \{\n      "l3NetworkUuid": "[0-9a-f]{32}",\n      "networkServiceProviderUuid": "[0-9a-f]{32}",\n      "networkServiceType": "(DNS|DHCP)"\n    \},/,
  );

  // 2. Detach the virtual router provider from the L3 network
  const s2 = await ok(`DetachNetworkServiceFromL3Network l3NetworkUuid=${l3} networkServices='{"${vr}":["DHCP","DNS"]}'`);
  t.same(Object.keys(s2.json), ['inventory', 'success']);
  t.same(Object.keys(s2.json.inventory), L3_KEYS);
  t.match(s2.json.inventory, {
    dns: ['8.8.8.8'],
    l2NetworkUuid: l2,
    name: 'l3-etpz',
    networkServices: [],
    state: 'Enabled',
    system: false,
    type: 'L3BasicNetwork',
    uuid: l3,
    zoneUuid: w.zoneUuid,
  });
  t.match(s2.json.inventory.ipRanges[0], {
    endIp: '192.168.201.199',
    gateway: '192.168.200.1',
    l3NetworkUuid: l3,
    name: 'ipr-dk7p',
    netmask: '255.255.252.0',
    startIp: '192.168.201.180',
  });
  keysSorted(s2.json.inventory.ipRanges[0]);
  t.match(s2.out, /"networkServices": \[\],\n/, 'an empty list prints as []');

  // 3. Get the flat network provider UUID
  const s3 = await ok(`QueryNetworkServiceProvider type=Flat`);
  t.equal(s3.json.inventories.length, 1);
  t.same(Object.keys(s3.json.inventories[0]), PROVIDER_KEYS);
  t.match(s3.json.inventories[0], {
    attachedL2NetworkUuids: [l2],
    description: 'Flat Network Service Provider',
    name: 'Flat Network Service Provider',
    networkServiceTypes: ['DHCP', 'Userdata'],
    type: 'Flat',
    uuid: flat,
  });

  // 4. Get L2 UUID for the L3 network — the seed's exact text
  const s4 = await ok(`QueryL3Network fields=l2NetworkUuid, uuid=${l3}`);
  t.equal(s4.out, `{\n  "inventories": [\n    {\n      "l2NetworkUuid": "${l2}"\n    }\n  ],\n  "success": true\n}\n`);

  // 5. Attach the flat network provider to the L2 network
  const s5 = await ok(`AttachNetworkServiceProviderToL2Network l2NetworkUuid=${l2} networkServiceProviderUuid=${flat}`);
  t.same(Object.keys(s5.json), ['inventory', 'success']);
  t.same(Object.keys(s5.json.inventory), PROVIDER_KEYS);
  t.match(s5.json.inventory, { attachedL2NetworkUuids: [l2], type: 'Flat', uuid: flat });

  // 6. Attach the flat network provider to the L3 network
  const s6 = await ok(`AttachNetworkServiceToL3Network l3NetworkUuid=${l3} networkServices='{"${flat}":["DHCP","Userdata"]}'`);
  t.same(Object.keys(s6.json.inventory), L3_KEYS);
  t.same(s6.json.inventory.networkServices, [
    { l3NetworkUuid: l3, networkServiceProviderUuid: flat, networkServiceType: 'DHCP' },
    { l3NetworkUuid: l3, networkServiceProviderUuid: flat, networkServiceType: 'Userdata' },
  ]);

  // 7. Delete the virtual router VM
  const s7 = await ok(`QueryVirtualRouterVm`);
  t.equal(s7.json.inventories.length, 1);
  const router = s7.json.inventories[0];
  keysSorted(router);
  t.match(router, { applianceVmType: 'VirtualRouter', name: `virtualRouter.l3.${l3}`, type: 'ApplianceVm', state: 'Running', managementNetworkUuid: l3 });
  keysSorted(router.vmNics[0]);
  keysSorted(router.allVolumes[0]);
  const destroyed = await ok(`DestroyVmInstance uuid=${router.uuid}`);
  t.equal(destroyed.out, '{\n  "success": true\n}\n', 'the seed prints {"success": true}');
  t.same((await ok(`QueryVirtualRouterVm count=true`)).json, { success: true, total: 0 });

  // 8. Reconnect all hosts
  const s8 = await ok(`QueryHost`);
  t.equal(s8.json.inventories.length, 2);
  for (const h of s8.json.inventories) {
    keysSorted(h);
    t.match(h, { hypervisorType: String, state: 'Enabled', status: 'Connected', zoneUuid: w.zoneUuid });
    const re = await ok(`ReconnectHost uuid=${h.uuid}`);
    t.equal(re.json.success, true);
    // The seed (v1.1) printed {"success": true}; the spec returns the host inventory as later upstream does.
    if (re.json.inventory) t.equal(re.json.inventory.status, 'Connected');
  }
});
