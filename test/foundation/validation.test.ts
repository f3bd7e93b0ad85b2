// Bad input gets a clear ZStack-shaped 400 naming the field, never a 500, and changes nothing.
import t from 'tap';
import { startServer, http } from '../lib/harness.js';

t.test('malformed requests', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const auth = { Authorization: `OAuth ${session}` };
  const zone = (await s.client.createZone({ name: 'z1' })).inventory;

  const cases: Array<[string, string, string, Record<string, unknown> | string | undefined, RegExp]> = [
    ['missing required field', 'POST', '/zstack/v1/zones', { params: {} }, /field\[params\.name\] is mandatory/],
    ['wrong type', 'POST', '/zstack/v1/zones', { params: { name: 42 } }, /field\[params\.name\] must be string/],
    ['too long', 'POST', '/zstack/v1/zones', { params: { name: 'x'.repeat(256) } }, /params\.name.*255/],
    ['leading space', 'POST', '/zstack/v1/zones', { params: { name: ' z' } }, /params\.name/],
    ['wrong wrapper key', 'POST', '/zstack/v1/zones', { zone: { name: 'z' } }, /params/],
    ['bad JSON', 'POST', '/zstack/v1/zones', '{"params": {"name": ', /not valid JSON/],
    ['no body where one is needed', 'POST', '/zstack/v1/zones', undefined, /body is missing/],
    ['bad enum', 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, { changeZoneState: { stateEvent: 'explode' } }, /stateEvent.*enable, disable/],
    ['unknown action', 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, { launchZone: {} }, /action mapping.*updateZone/],
    ['bad uuid in path', 'PUT', '/zstack/v1/zones/not-a-uuid/actions', { updateZone: { name: 'n' } }, /field\[uuid\]/],
    ['array instead of object', 'POST', '/zstack/v1/zones', [] as never, /must be object/],
  ];
  for (const [what, method, path, body, pattern] of cases) {
    const res = await http(s.url, method, path, typeof body === 'string' ? { rawBody: body, headers: auth } : { body, headers: auth });
    t.equal(res.status, 400, `${what}: 400`);
    t.equal(res.json?.error?.code, 'SYS.1007', `${what}: SYS.1007`);
    t.match(res.json?.error?.details, pattern, `${what}: ${res.json?.error?.details}`);
    t.notMatch(res.text, /at .*\.ts:\d+/, `${what}: no stack trace`);
  }
  const zones = await s.client.queryZone({});
  t.same(
    zones.inventories!.map((z) => z.name),
    ['z1'],
    'nothing was created by bad requests',
  );

  t.test('global config values are validated', async (t) => {
    const bad = async (category: string, name: string, value: string, pattern: RegExp) => {
      const e = await s.client.updateGlobalConfig({ category, name, value }).catch((x) => x);
      t.equal(e.code, 'SYS.1007', `${category}/${name}=${value}`);
      t.match(e.details, pattern);
    };
    await bad('apiTimeout', 'CreateZone', 'soon', /not a duration/);
    await bad('apiTimeout', 'CreateZone', '500', /minimum/);
    await bad('apiTimeout', 'NoSuchApi', '1h', /Unable to find GlobalConfig/);
    await bad('identity', 'session.timeout', 'abc', /integer/);
    const ok = await s.client.updateGlobalConfig({ category: 'apiTimeout', name: 'CreateZone', value: '2h' });
    t.equal(ok.inventory.value, '2h');
    const res = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z2' } }, headers: auth });
    t.equal(res.json.apiTimeout, 2 * 3600_000, 'the configured timeout applies');
    const byClass = await s.client.updateGlobalConfig({ category: 'apiTimeout', name: 'org.zstack.header.zone.APICreateZoneMsg', value: '3h' });
    t.equal(byClass.inventory.name, 'CreateZone', "upstream's API class name is an alias of the API name");
    t.equal(byClass.inventory.value, '3h');
    await s.client.updateGlobalConfig({ category: 'apiTimeout', name: 'CreateZone', value: '2h' });
    await bad('apiTimeout', 'org.zstack.header.zone.APIFlyMsg', '1h', /Unable to find GlobalConfig/);
    const all = await s.client.queryGlobalConfig({ q: ['category=apiTimeout'] });
    t.ok(all.inventories!.some((c) => c.name === 'CreateZone' && c.value === '2h'));
    t.ok(all.inventories!.length >= s.app.operations.length - 2, 'one entry per API');
  });
});
