// A tiny HTTP proxy in front of a test server that injects faults per request and records what it saw: the tests
// count requests through it to prove the SDK retries exactly when it is safe.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  /** 1-based order of arrival. */
  n: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The client went away before the answer (abort). */
  clientClosed?: boolean;
}

export type Fault =
  | 'pass'
  /** close the connection without answering; the server never sees the request */
  | 'reset'
  /** forward (the server does the work), then close the connection without answering */
  | 'forward-then-reset'
  /** answer this instead of forwarding */
  | { status: number; body?: string; contentType?: string; headers?: Record<string, string> }
  /** wait, then forward */
  | { delayMs: number };

export interface FaultProxy {
  url: string;
  port: number;
  requests: SeenRequest[];
  /** Requests whose method and path (without query) match. */
  count(method: string, pathPrefix: string): number;
  close(): Promise<void>;
}

function forward(target: URL, req: SeenRequest): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    out.on('error', reject);
    out.end(req.body || undefined);
  });
}

export async function startFaultProxy(target: string, decide: (r: SeenRequest) => Fault, opts: { port?: number } = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const requests: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const seen: SeenRequest = {
        n: requests.length + 1,
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      let onClientClose = () => {};
      res.on('close', () => {
        if (!res.writableFinished) seen.clientClosed = true;
        onClientClose();
      });
      let fault: Fault;
      try {
        fault = decide(seen);
      } catch {
        fault = 'pass';
      }
      try {
        if (fault === 'reset') return void req.socket.destroy();
        if (typeof fault === 'object' && 'status' in fault) {
          res.writeHead(fault.status, { 'content-type': fault.contentType ?? 'text/plain', ...fault.headers });
          return void res.end(fault.body ?? 'injected fault');
        }
        if (typeof fault === 'object' && 'delayMs' in fault) {
          // A held answer ends early when the client goes away (so a long hold never outlives the test).
          await new Promise<void>((r) => {
            const timer = setTimeout(r, fault.delayMs);
            onClientClose = () => (clearTimeout(timer), r());
          });
        }
        if (seen.clientClosed || req.socket.destroyed) return;
        const answer = await forward(upstream, seen);
        if (fault === 'forward-then-reset') return void req.socket.destroy();
        const headers = { ...answer.headers };
        delete headers['transfer-encoding'];
        delete headers.connection;
        headers['content-length'] = String(answer.body.length);
        res.writeHead(answer.status, headers);
        res.end(answer.body);
      } catch (e) {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy error: ${(e as Error).message}`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    count: (method, prefix) => requests.filter((r) => r.method === method && r.url.split('?')[0].startsWith(prefix)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (yet). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
