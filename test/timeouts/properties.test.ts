// zstack.properties in the v1.1 syntax, and the precedence header › UpdateGlobalConfig › properties › default.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseZStackProperties, parseUpstreamDuration } from '../../server/src/core/api-timeouts.js';
import { startServer, http } from '../lib/harness.js';

const known = new Set(['AddImage', 'CreateZone', 'CreateVmInstance']);
const RELEASE_NOTE_LINE =
  'ApiTimeout.org.zstack.header.image.APIAddImageMsg= org.zstack.header.storage.backup.DownloadImageMsg, org.zstack.storage.backup.sftp.SftpBackupStorageCommands$DownloadCmd, org.zstack.storage.ceph.backup.CephBackupStorageBase$DownloadCmd; 6h';

t.test('the release notes example parses as upstream did', async (t) => {
  const p = parseZStackProperties(`# comment\nother.property=1\n${RELEASE_NOTE_LINE}\n`, known);
  t.equal(p.apis.get('AddImage'), 6 * 3600_000);
  t.equal(p.agentPaths.get('/backupstorage/download'), 6 * 3600_000, 'the download command gets the budget');
  t.same(p.warnings, []);
});

t.test('durations as upstream: bare number = ms, units s/m/h/d', async (t) => {
  t.equal(parseUpstreamDuration('1500'), 1500);
  t.equal(parseUpstreamDuration('2s'), 2000);
  t.equal(parseUpstreamDuration('5M'), 300_000);
  t.equal(parseUpstreamDuration('1d'), 86_400_000);
  t.equal(parseUpstreamDuration('1w'), undefined);
  t.equal(parseUpstreamDuration('six hours'), undefined);
});

t.test('continued lines and unknown relatives', async (t) => {
  const p = parseZStackProperties('ApiTimeout.org.zstack.header.vm.APICreateVmInstanceMsg = \\\n   org.zstack.Foo$BarCmd, StartVmCmd; 2h', known);
  t.equal(p.apis.get('CreateVmInstance'), 7_200_000);
  t.equal(p.agentPaths.get('/vm/start'), 7_200_000);
  t.match(p.warnings[0], /Foo\$BarCmd has no counterpart/);
});

t.test('malformed lines fail with the line named', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['ApiTimeout.org.zstack.header.image.APIAddImageMsg=DownloadImageMsg, 6h', /line 1 .*exactly one ';'/],
    ['ApiTimeout.org.zstack.header.image.APIAddImageMsg=a; b; 6h', /exactly one ';'/],
    ['ApiTimeout.org.zstack.header.image.APIAddImageMsg=DownloadImageMsg; soon', /timeout \[soon\]/],
    ['ApiTimeout.org.zstack.header.image.APIAddImageMsg=DownloadImageMsg; 10', /at least 1 s/],
    // Node timers cannot wait longer than 24.8 days: 25d would fire at once.
    ['ApiTimeout.org.zstack.header.image.APIAddImageMsg=DownloadImageMsg; 25d', /at most 24.8 days/],
    ['\n\nApiTimeout.org.zstack.header.NoSuchThing=x; 1h', /line 3 .*not an API message class/],
    ['ApiTimeout.org.zstack.header.vm.APIFlyToTheMoonMsg=x; 1h', /there is no API FlyToTheMoon/],
  ];
  for (const [text, pattern] of bad) t.throws(() => parseZStackProperties(text, known), pattern, text);
});

t.test('precedence on a running server', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.app.close();
  const file = join(s.dataDir, 'zstack.properties');
  writeFileSync(file, 'ApiTimeout.org.zstack.header.zone.APICreateZoneMsg=CreateZoneMsg; 2s\n');
  const app = await (await import('../../server/src/app.js')).App.create({ ...s.app.options, propertiesFile: file, port: 0 });
  t.teardown(() => app.close());
  const url = await app.listen();
  const { ZStackClient } = await import('../../sdk/src/index.js');
  const zs = new ZStackClient({ endpoint: url, accountName: 'admin', password: 'password' });
  const auth = { Authorization: `OAuth ${await zs.login()}` };
  const create = (headers: Record<string, string> = {}) =>
    http(url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z' } }, headers: { ...auth, ...headers } });
  t.equal((await create()).json.apiTimeout, 2000, 'zstack.properties applies over the default');
  await zs.updateGlobalConfig({ category: 'apiTimeout', name: 'CreateZone', value: '45s' });
  t.equal((await create()).json.apiTimeout, 45_000, 'UpdateGlobalConfig wins over zstack.properties');
  t.equal((await create({ 'X-API-Timeout': '7' })).json.apiTimeout, 7000, 'the header wins over everything');
  const bad = join(s.dataDir, 'bad.properties');
  writeFileSync(bad, 'ApiTimeout.org.zstack.header.zone.APICreateZoneMsg=CreateZoneMsg 2s\n');
  await t.rejects(
    (await import('../../server/src/app.js')).App.create({ ...s.app.options, propertiesFile: bad, port: 0 }),
    /bad\.properties line 1 .*exactly one ';'/,
    'a bad line fails start, naming it',
  );
});
