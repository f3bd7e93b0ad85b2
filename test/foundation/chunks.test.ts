// A reply body sent as the buffers it was built from (core/chunks.ts): the bytes, the headers the reply already had,
// the access-log hook, HEAD, and a body sent again going out as one buffer.
import t from 'tap';
import Fastify from 'fastify';
import { Chunks, sendBody } from '../../server/src/core/chunks.js';

t.test('chunks are sent as one body, with the reply’s headers and hooks', async (t) => {
  const app = Fastify({ forceCloseConnections: true });
  t.teardown(() => app.close());
  const finished: Array<{ status: number; url: string }> = [];
  app.addHook('onRequest', async (req, reply) => void reply.header('x-request-id', req.id));
  app.addHook('onResponse', async (req, reply) => void finished.push({ status: reply.statusCode, url: req.url }));
  const parts = ['{"inventories":[', '{"name":"ünïcödé"}', ',', '{"name":"b"}', '],"success":true}'].map((s) => Buffer.from(s));
  const body = new Chunks(parts);
  app.get('/page', (_req, reply) => sendBody(reply, body, 'application/json; charset=utf-8'));
  app.get('/fresh', (_req, reply) => sendBody(reply, new Chunks(parts), 'application/json; charset=utf-8'));
  app.get('/text', (_req, reply) => sendBody(reply, '{"a":1}', 'application/json'));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });

  const expected = Buffer.concat(parts);
  t.equal(body.length, expected.length, 'the length counts bytes, not characters');
  t.equal(body.toString(), expected.toString(), 'its text');
  const first = await fetch(`${url}/page`);
  t.equal(first.status, 200);
  t.equal(first.headers.get('content-type'), 'application/json; charset=utf-8');
  t.equal(first.headers.get('content-length'), String(expected.length));
  t.ok(first.headers.get('x-request-id'), 'a header set before the send goes out with the pieces');
  t.same(Buffer.from(await first.arrayBuffer()), expected, 'the bytes, in order');
  t.same(finished.at(-1), { status: 200, url: '/page' }, 'the onResponse hook (the access log) saw the reply');

  t.equal(body.forSending().length, 1, 'sent once already: the next send is one buffer');
  const again = await fetch(`${url}/page`);
  t.same(Buffer.from(await again.arrayBuffer()), expected, 'the same bytes from the flattened body');
  t.equal(body.toBuffer(), body.toBuffer(), 'flattened once');

  const head = await fetch(`${url}/fresh`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('content-length'), String(expected.length), 'HEAD: the length of the body it would have');
  t.equal(await head.text(), '', 'HEAD: no body');
  const fresh = await fetch(`${url}/fresh`);
  t.same(Buffer.from(await fresh.arrayBuffer()), expected, 'the connection still serves pieces after a HEAD');
  const text = await fetch(`${url}/text`);
  t.equal(await text.text(), '{"a":1}', 'a string body goes through fastify as before');
  t.equal(finished.length, 5, 'every reply was logged');
});

t.test('a fresh body is written in pieces (not copied into one buffer)', async (t) => {
  const parts = [Buffer.from('a'), Buffer.from('b')];
  const body = new Chunks(parts);
  const sending = body.forSending();
  t.equal(sending.length, 2, 'the pieces themselves');
  t.equal(sending[0], parts[0], 'not copies');
});

t.test('a caller gone before the page is ready: nothing is written', async (t) => {
  const app = Fastify({ forceCloseConnections: true });
  t.teardown(() => app.close());
  let outcome: { headersSent: boolean } | undefined;
  let gone!: () => void;
  const closed = new Promise<void>((resolve) => (gone = resolve));
  app.get('/slow', async (req, reply) => {
    req.raw.once('close', gone);
    await closed;
    sendBody(reply, new Chunks([Buffer.from('{"a":'), Buffer.from('1}')]), 'application/json');
    outcome = { headersSent: reply.raw.headersSent };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const aborted = new AbortController();
  const pending = fetch(`${url}/slow`, { signal: aborted.signal }).catch((e: Error) => e);
  await new Promise<void>((resolve) => app.server.once('request', () => resolve()));
  aborted.abort();
  t.match(await pending, { name: 'AbortError' });
  await closed;
  await new Promise((resolve) => setImmediate(resolve));
  t.same(outcome, { headersSent: false }, 'no header or piece was written to the closed response');
});
