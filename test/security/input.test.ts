// Input bounds: numbers past what PostgreSQL and JavaScript hold, timeouts past what Node timers can wait, prototype
// names in queries and bodies, NUL bytes and unpaired surrogates anywhere, and every transport-level refusal (413,
// 414, 415, 431, bad JSON, malformed URLs) answer a ZStack-shaped 4xx — never a 500, never Fastify's shape.
import t from 'tap';
import net from 'node:net';
import { startServer, http } from '../lib/harness.js';

/** The ZStack error shape, and nothing of Fastify's (`statusCode`, `message`). */
function zstackError(t: any, res: { status: number; json: any; text: string }, status: number, what: string) {
  t.equal(res.status, status, `${what}: ${status} (${res.json?.error?.details ?? res.text.slice(0, 120)})`);
  t.equal(typeof res.json?.error?.code, 'string', `${what}: a ZStack error code`);
  t.equal(typeof res.json?.error?.description, 'string', `${what}: a description`);
  t.notOk('statusCode' in (res.json ?? {}) || 'message' in (res.json ?? {}), `${what}: not Fastify's shape`);
  t.notMatch(res.text, /\bat .*\.(ts|js):\d+|SELECT|INSERT|params:/, `${what}: no stack trace, no SQL`);
}

/** One raw HTTP exchange (for what fetch will not send: huge headers, raw bytes in the request line). */
function rawRequest(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(text));
    let out = '';
    socket.on('data', (d) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

t.test('input bounds', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const auth = { Authorization: `OAuth ${session}` };
  const get = (path: string, headers: Record<string, string> = auth) => http(s.url, 'GET', path, { headers });

  t.test('numbers past 2^53 and the columns are a 400, not a 500', async (t) => {
    const offering = (memorySize: string, extra = '') =>
      http(s.url, 'POST', '/zstack/v1/instance-offerings', { rawBody: `{"params":{"name":"o","cpuNum":1,"memorySize":${memorySize}${extra}}}`, headers: auth });
    zstackError(t, await offering('9223372036854775808'), 400, 'memorySize 2^63');
    zstackError(t, await offering('1e300'), 400, 'memorySize 1e300');
    zstackError(t, await offering('1', ',"sortKey":-99999999999999999999'), 400, 'sortKey −1e20');
    zstackError(t, await get('/zstack/v1/zones?start=1e20'), 400, 'start=1e20');
    zstackError(t, await get('/zstack/v1/zones?limit=1e20'), 400, 'limit=1e20');
    zstackError(t, await get('/zstack/v1/instance-offerings?q=cpuNum>1e23'), 400, 'q=cpuNum>1e23');
    zstackError(t, await get('/zstack/v1/instance-offerings?q=cpuNum>3000000000'), 400, 'q=cpuNum past int4');
    zstackError(t, await get('/zstack/v1/instance-offerings?q=memorySize>1e19'), 400, 'q=memorySize past 2^53');
    t.equal((await get('/zstack/v1/instance-offerings?q=cpuNum>2147483647')).status, 200, 'the largest int4 is fine');
  });

  t.test('timeouts: nothing past what a Node timer can wait', async (t) => {
    for (const v of ['1e100', '2147484', '99999999999999999999', '-1', '0', '1.5', 'soon']) {
      zstackError(
        t,
        await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z' } }, headers: { ...auth, 'X-API-Timeout': v } }),
        400,
        `X-API-Timeout ${v}`,
      );
    }
    const ok = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'zmax' } }, headers: { ...auth, 'X-API-Timeout': '2147483' } });
    t.equal(ok.status, 202, 'the longest timeout is accepted');
    t.equal(ok.json.apiTimeout, 2147483000);
    const e = await s.client.updateGlobalConfig({ category: 'apiTimeout', name: 'CreateZone', value: '25d' }).catch((x) => x);
    t.equal(e.code, 'SYS.1007', 'apiTimeout 25d is refused');
    t.match(e.details, /maximum/);
    const e2 = await s.client.updateGlobalConfig({ category: 'gc', name: 'batchSize', value: '99999999999999999999' }).catch((x) => x);
    t.equal(e2.code, 'SYS.1007', 'an int setting past 2^31 is refused');
    await s.client.updateGlobalConfig({ category: 'apiTimeout', name: 'CreateZone', value: '24d' });
    const zone = await s.client.createZone({ name: 'after-24d' });
    t.equal(zone.inventory.name, 'after-24d', 'the API still works with the longest timeout');
  });

  t.test('prototype names are refused on every Query API', async (t) => {
    const queries = s.app.operations.filter((op) => op.x.kind === 'query' && !op.path.includes('{'));
    t.ok(queries.length > 20, `${queries.length} Query APIs`);
    const bad = [
      'q=__proto__=1',
      'sort=-__proto__',
      'q=constructor.prototype=1',
      'q=__proto__.x=1',
      'sortBy=constructor',
      'fields=__proto__',
      'q=toString=1',
      'q=hasOwnProperty%3E1',
    ];
    for (const op of queries) {
      for (const b of bad) {
        const res = await get(`${op.path}?${b}`);
        t.equal(res.status, 400, `${op.operationId} ${b}: 400`);
        t.equal(res.json?.error?.code, 'SYS.1007');
      }
    }
  });

  t.test('NUL bytes and unpaired surrogates: a 400 wherever they come', async (t) => {
    zstackError(t, await get('/zstack/v1/zones?q=name=a%00b'), 400, 'NUL in a condition');
    // A URL is UTF-8: the bytes of a lone surrogate are invalid UTF-8 and decode to U+FFFD, which is storable.
    const wtf8 = await get('/zstack/v1/zones?q=name=a%ED%A0%80b');
    t.equal(wtf8.status, 200, "a lone surrogate's bytes in a URL: U+FFFD, an ordinary condition");
    zstackError(t, await get('/zstack/v1/zones/abc%00def'), 400, 'NUL in a path parameter');
    zstackError(t, await get('/zstack/v1/zones/abc%ED%A0%80'), 400, 'a surrogate in a path parameter');
    zstackError(t, await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: '{"params":{"name":"a\\u0000"}}', headers: auth }), 400, 'NUL in a body string');
    zstackError(
      t,
      await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: '{"params":{"name":"a\\udc00"}}', headers: auth }),
      400,
      'a lone low surrogate in a body string',
    );
    zstackError(
      t,
      await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: '{"params":{"name":"a","systemTags":["\\ud83d"]}}', headers: auth }),
      400,
      'a lone surrogate in a tag',
    );
    const login = (accountName: string) =>
      http(s.url, 'PUT', '/zstack/v1/accounts/login', { rawBody: `{"logInByAccount":{"accountName":"${accountName}","password":"x"}}` });
    zstackError(t, await login('adm\\u0000in'), 400, 'NUL in accountName');
    zstackError(t, await login('adm\\ud800in'), 400, 'a surrogate in accountName');
    t.equal(
      (await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'emoji-😀' } }, headers: auth })).status,
      202,
      'paired surrogates (emoji) are fine',
    );
  });

  t.test('prototype keys in bodies are refused', async (t) => {
    for (const raw of [
      '{"params":{"name":"z","__proto__":{"polluted":1}}}',
      '{"params":{"name":"z","constructor":{"prototype":{"polluted":1}}}}',
      '{"__proto__":{"x":1},"params":{"name":"z"}}',
    ]) {
      zstackError(t, await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: raw, headers: auth }), 400, raw);
    }
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing reached Object.prototype');
    const deep = '{"params":{"name":"z","systemTags":' + '['.repeat(5000) + ']'.repeat(5000) + '}}';
    zstackError(t, await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: deep, headers: auth }), 400, 'nesting 5000 deep');
  });

  t.test('transport-level refusals in the ZStack shape', async (t) => {
    zstackError(t, await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: '{"params": {"name": ', headers: auth }), 400, 'bad JSON');
    zstackError(
      t,
      await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: 'name=z', headers: { ...auth, 'content-type': 'application/xml' } }),
      415,
      'wrong content type',
    );
    zstackError(
      t,
      await http(s.url, 'POST', '/zstack/v1/zones', { rawBody: `{"params":{"name":"${'x'.repeat(9 * 1024 * 1024)}"}}`, headers: auth }),
      413,
      'a 9 MB body',
    );
    zstackError(t, await get(`/zstack/v1/zones?q=name=${'x'.repeat(17 * 1024)}`), 414, 'a 17 KB URL');
    zstackError(t, await http(s.url, 'DELETE', `/zstack/v1/zones/${'a'.repeat(2000)}`, { headers: auth }), 400, 'a 2000-character path parameter');
    zstackError(t, await http(s.url, 'DELETE', `/zstack/v1/zones/%E0%A4%A`, { headers: auth }), 400, 'a malformed escape in the path');
    zstackError(t, await get('/zstack/v1/zones', { ...auth, 'X-Padding': 'x'.repeat(20 * 1024) }), 431, '20 KB of headers');
    zstackError(t, await get('/zstack/v1/no/such/api'), 404, 'unknown URL');
    const huge = await rawRequest(s.url, `GET /zstack/v1/zones HTTP/1.1\r\nHost: x\r\nX-Padding: ${'x'.repeat(100 * 1024)}\r\n\r\n`);
    t.match(huge, /^HTTP\/1\.1 431/, "past Node's own header limit: 431");
    t.match(huge, /"code":"SYS\.1007"/, '… in the ZStack shape');
    const broken = await rawRequest(s.url, 'GET /zstack/v1/zones HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    t.match(broken, /^HTTP\/1\.1 400[\s\S]*"code":"SYS\.1007"/, 'a malformed request: 400 in the ZStack shape');
    t.equal((await get('/zstack/v1/zones')).status, 200, 'the server still answers');
  });
});
