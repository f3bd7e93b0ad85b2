// The error catalogue: one table (core/error-codes.ts) gives the server its descriptions and statuses, and the docs
// their catalogue; every code the server's (and agents') sources name is in it.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../test/lib/harness.js';
import { ERROR_CODES, descriptionOf, statusOf } from '../src/core/error-codes.js';
import { ApiError, errorCode } from '../src/core/errors.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

t.test('every code the sources name is in the table', async (t) => {
  const named = new Map<string, string>();
  for (const file of [...sources(join(REPO, 'server', 'src')), ...sources(join(REPO, 'agents', 'src'))]) {
    for (const m of readFileSync(file, 'utf8').matchAll(/'([A-Z_]+\.\d{4})'/g)) named.set(m[1], file.slice(REPO.length + 1));
  }
  t.ok(named.size >= 20, `${named.size} codes named in the sources`);
  const missing = [...named].filter(([code]) => !(code in ERROR_CODES)).map(([code, file]) => `${code} (${file})`);
  t.same(missing, [], 'no code outside the catalogue');
});

t.test('the server takes descriptions and statuses from the table', async (t) => {
  for (const [code, e] of Object.entries(ERROR_CODES)) {
    t.equal(errorCode(code).description, e.description, `${code} description`);
    t.equal(new ApiError(errorCode(code)).httpStatus, 'status' in e ? e.status : 503, `${code} status`);
  }
  t.equal(descriptionOf('NOPE.0000'), 'An error happened');
  t.equal(statusOf('NOPE.0000'), 503);
});

t.test('the docs serve the catalogue and a favicon', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const page = await fetch(`${s.url}/zstack/docs/errors`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /text\/html/);
  const html = await page.text();
  for (const [code, e] of Object.entries(ERROR_CODES)) {
    t.ok(html.includes(`<tr id="${code}"><td><code>${code}</code></td><td>${'status' in e ? e.status : 503}`), `${code} listed with its status`);
  }
  const json = await (await fetch(`${s.url}/zstack/docs/errors.json`)).json();
  t.same(Object.keys(json), Object.keys(ERROR_CODES));
  t.match(await (await fetch(`${s.url}/zstack/docs`)).text(), /href="\/zstack\/docs\/errors"/, 'linked from the reference');
  t.equal((await fetch(`${s.url}/favicon.ico`)).status, 204, 'no 404 for the favicon');

  // A real reply uses the table's description.
  const r = await fetch(`${s.url}/zstack/v1/zones`, { headers: { 'X-ZStack-Errors': 'direct' } });
  t.equal(r.status, 401);
  t.same((await r.json()).error.description, ERROR_CODES['ID.1001'].description);
});
