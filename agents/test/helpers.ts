// Shared test helpers: start an agent in-process on an ephemeral port and call it like the management server does.
import http from 'node:http';
import { startAgent, type RunningAgent, type StartAgentOptions } from '../src/index.js';

export const SECRET = 'test-secret';

export async function start(opts: Partial<StartAgentOptions> & Pick<StartAgentOptions, 'kind'>): Promise<RunningAgent> {
  // Ephemeral ports everywhere, the console proxy's WebSocket listener included: test files run in parallel.
  return startAgent({ port: 0, host: '127.0.0.1', secret: SECRET, consoleProxy: { port: 0 }, ...opts });
}

export interface CallOptions {
  target?: string;
  timeoutMs?: number;
  /** null = send no Authorization header. */
  secret?: string | null;
  /** Raw body text instead of JSON.stringify(body). */
  raw?: string;
}

export interface CallResult {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export async function call(agent: RunningAgent, path: string, body: unknown = {}, opts: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const secret = opts.secret === undefined ? SECRET : opts.secret;
  if (secret !== null) headers.authorization = `Bearer ${secret}`;
  if (opts.target !== undefined) headers['x-zstack-target-uuid'] = opts.target;
  if (opts.timeoutMs !== undefined) headers['x-zstack-timeout-ms'] = String(opts.timeoutMs);
  const res = await fetch(`${agent.url}${path}`, { method: 'POST', headers, body: opts.raw ?? JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

export function rootVolume(vmUuid: string) {
  return { installPath: `/ps/${vmUuid}/root.qcow2`, deviceId: 0, volumeUuid: `root-${vmUuid}` };
}

export function startCmd(vmUuid: string, extra: Record<string, unknown> = {}) {
  return { vmInstanceUuid: vmUuid, vmName: `vm-${vmUuid}`, memory: 1024 ** 3, cpuNum: 2, cpuSpeed: 2000, rootVolume: rootVolume(vmUuid), ...extra };
}

/** A keep-alive client much cheaper than fetch, for tests that send thousands of commands. */
export function fastClient(agent: RunningAgent, maxSockets = 64) {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets });
  const post = (path: string, body: unknown, target: string): Promise<CallResult> =>
    new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const headers = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(data),
        authorization: `Bearer ${SECRET}`,
        'x-zstack-target-uuid': target,
      };
      const req = http.request(`${agent.url}${path}`, { method: 'POST', agent: keepAlive, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(data);
    });
  return { post, close: () => keepAlive.destroy() };
}
