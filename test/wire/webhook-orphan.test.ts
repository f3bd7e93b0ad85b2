// X-Web-Hook is called for a job that a dead management node left behind, too: when the next node fails it
// (SYS.1006), the caller who asked to be told is told, once, as for any other job (X-Job-UUID, X-Job-Success: false).
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import { startServer, pollJob } from '../lib/harness.js';

t.test("a dead node's job calls its web hook when it is failed", async (t) => {
  const calls: Array<{ headers: IncomingMessage['headers']; body: any }> = [];
  let notify: () => void = () => undefined;
  const called = new Promise<void>((resolve) => (notify = resolve));
  const hook = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      calls.push({ headers: req.headers, body: JSON.parse(text) });
      res.end();
      notify();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  t.teardown(() => hook.close());
  const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;

  const s = await startServer();
  t.teardown(() => s.close());
  // A job a node that has died left running (its row as that node wrote it), with the caller's X-Web-Hook.
  const jobUuid = 'ab'.repeat(16);
  await s.app.database.pool!.query(
    `INSERT INTO api_jobs (uuid, api_name, request, status, timeout_ms, deadline, owner_node, web_hook)
     VALUES ($1, 'UpdateZone', '{}', 'processing', 60000, now() + interval '1 minute', 'a-node-that-died', $2)`,
    [jobUuid, hookUrl],
  );
  t.equal(calls.length, 0, 'nothing called while the job is running');
  const failed = await s.app.jobs.failOrphans(await s.app.jobs.liveNodes(60_000));
  t.equal(failed, 1, 'the live node fails the orphan');
  const done = await pollJob(`${s.url}/zstack/v1/api-jobs/${jobUuid}`, 5000);
  t.equal(done.status, 503);
  t.equal(done.json.error.code, 'SYS.1006');
  t.equal(await s.app.jobs.failOrphans(await s.app.jobs.liveNodes(60_000)), 0, 'a second pass finds nothing (the hook is not called twice)');
  await Promise.race([called, new Promise((_, reject) => setTimeout(() => reject(new Error('the web hook was not called')), 20_000))]);
  t.equal(calls.length, 1, 'called once');
  t.equal(calls[0].headers['x-job-uuid'], jobUuid);
  t.equal(calls[0].headers['x-job-success'], 'false');
  t.equal(calls[0].body.error.code, 'SYS.1006');
});
