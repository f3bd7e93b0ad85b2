// The agent HTTP client (server/src/agent-client): a request sent on a kept-alive connection that the agent closed
// meanwhile is sent once more on a new connection; an agent that cannot be reached is SYS.1015 naming the error;
// an agent's `success: false` is SYS.1006 with its message.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentClient } from '../../server/src/agent-client/index.js';

t.test('a kept-alive connection closed by the agent: the request goes again on a new one', async (t) => {
  const served = new WeakMap<object, number>();
  let requests = 0;
  let dropped = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const n = served.get(req.socket) ?? 0;
    served.set(req.socket, n + 1);
    // The second request on a connection finds it closed (what an agent's idle timeout does, racing the client).
    if (n >= 1) {
      dropped++;
      req.socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ success: true, n: requests }));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agents = new AgentClient('secret');

  t.match(await agents.call(url, '/host/ping', {}), { success: true });
  const second = await agents.call(url, '/host/ping', {});
  t.match(second, { success: true }, 'the second call succeeds');
  t.equal(dropped, 1, 'its first attempt went out on the kept-alive connection and was dropped');
  t.equal(requests, 3, 'then it went once more');
  server.closeAllConnections();
});

t.test('with several kept-alive connections closed by the agent, the request goes again on a fresh one', async (t) => {
  // An agent that died leaves every pooled connection to it dead: the retry must not take another of them.
  const served = new WeakMap<object, number>();
  let fresh = 0;
  const server = http.createServer((req, res) => {
    const n = served.get(req.socket) ?? 0;
    served.set(req.socket, n + 1);
    if (n >= 1) return void req.socket.destroy();
    fresh++;
    req.resume();
    // Held a moment, so concurrent calls each open their own connection (the pool then keeps both).
    req.on('end', () => setImmediate(() => res.end(JSON.stringify({ success: true }))));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agents = new AgentClient('secret');
  await Promise.all([agents.call(url, '/host/ping', {}), agents.call(url, '/host/ping', {})]);
  t.equal(fresh, 2, 'two connections in the pool');
  t.match(await agents.call(url, '/host/ping', {}), { success: true }, 'the next call succeeds');
  t.equal(fresh, 3, 'its retry went on a new connection');
});

t.test('unreachable and refusing agents', async (t) => {
  const agents = new AgentClient('secret');
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const unreachable = await agents.call(`http://127.0.0.1:${port}`, '/host/ping', {}).catch((e: { error?: unknown }) => e);
  t.match(unreachable, { error: { code: 'SYS.1015', details: /cannot reach the agent .*ECONNREFUSED/ } });

  const refusing = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ success: false, error: 'disk full' })));
  });
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    refusing.closeAllConnections();
    return new Promise<void>((r) => refusing.close(() => r()));
  });
  const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
  const refused = await agents.call(url, '/vm/stop', { uuid: 'vm' }).catch((e: { error?: unknown }) => e);
  t.match(refused, { error: { code: 'SYS.1006', details: /agent \/vm\/stop failed: disk full/ } });
});

t.test('an agent started on demand that refuses its port (it died, its exit not seen yet) is started again, once', async (t) => {
  const live = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ success: true })));
  });
  await new Promise<void>((r) => live.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    live.closeAllConnections();
    return new Promise<void>((r) => live.close(() => r()));
  });
  const dead = http.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise<void>((r) => dead.close(() => r()));
  const liveUrl = `http://127.0.0.1:${(live.address() as AddressInfo).port}`;

  let current = deadUrl;
  const gone: string[] = [];
  const agents = new AgentClient('secret');
  agents.startOnDemand('on-demand://test', {
    url: async () => current,
    unreachable: async (url) => {
      gone.push(url);
      current = liveUrl; // what OnDemandAgent does: stop the dead one, start another
    },
  });
  t.match(await agents.call('on-demand://test', '/host/ping', {}), { success: true }, 'the call reached the new agent');
  t.same(gone, [deadUrl], 'the refusing agent was reported once');

  // An agent that keeps refusing is reported once per call, then the call fails as unreachable.
  current = deadUrl;
  agents.startOnDemand('on-demand://refusing', { url: async () => deadUrl, unreachable: async (url) => void gone.push(url) });
  const failed = await agents.call('on-demand://refusing', '/host/ping', {}).catch((e: { error?: unknown }) => e);
  t.match(failed, { error: { code: 'SYS.1015', details: /ECONNREFUSED/ } });
  t.same(gone, [deadUrl, deadUrl], 'one restart per call, no loop');
});
