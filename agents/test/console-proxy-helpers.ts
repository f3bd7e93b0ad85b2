// Helpers for the console proxy tests: a simulated VM with an RFB console, a WebSocket reader, the RFB handshake.
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import type { RunningAgent } from '../src/index.js';
import { call, start, startCmd } from './helpers.js';

/** A simulator with one connected host and one running VM whose VNC listener is open. */
export async function simulatedVm(vmUuid = 'vm-console', hostUuid = 'h1') {
  const sim = await start({ kind: 'simulator' });
  await call(sim, '/host/connect', { hostUuid });
  const started = await call(sim, '/vm/start', startCmd(vmUuid), { target: hostUuid });
  if (!started.body.success) throw new Error(started.body.error);
  const vnc = (await call(sim, '/vm/getvncport', { vmUuid }, { target: hostUuid })).body;
  if (!vnc.success) throw new Error(vnc.error);
  return { sim, vmUuid, hostUuid, vncHost: vnc.host as string, vncPort: vnc.port as number };
}

export async function establish(agent: RunningAgent, body: Record<string, unknown>) {
  const res = await call(agent, '/console/establish', body, { target: 'mn-1' });
  return res.body;
}

/** Reads exactly n bytes from the binary (or base64 text) messages of a WebSocket. */
export function wsReader(ws: WebSocket) {
  const chunks: Buffer[] = [];
  let size = 0;
  let waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  let closed: Error | undefined;
  const take = (n: number): Buffer => {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    chunks.length = 0;
    if (all.length > n) chunks.push(all.subarray(n));
    size -= n;
    return all.subarray(0, n);
  };
  const flush = () => {
    if (waiting && size >= waiting.n) {
      const w = waiting;
      waiting = undefined;
      w.resolve(take(w.n));
    } else if (waiting && closed) {
      const w = waiting;
      waiting = undefined;
      w.reject(closed);
    }
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const bytes = isBinary ? data : Buffer.from(data.toString(), 'base64');
    chunks.push(bytes);
    size += bytes.length;
    flush();
  });
  ws.on('close', (code, reason) => {
    closed = new Error(`closed ${code} ${reason.toString()}`);
    flush();
  });
  return (n: number) =>
    new Promise<Buffer>((resolve, reject) => {
      waiting = { n, resolve, reject };
      flush();
    });
}

export interface Opened {
  ws: WebSocket;
  read: (n: number) => Promise<Buffer>;
  /** The first 16 messages as received (kept from the start: early frames can arrive with the handshake). */
  frames: { data: Buffer; isBinary: boolean }[];
}

/** Opens a WebSocket; resolves when open or rejects with {status, reason} when the upgrade is refused. */
export function openWs(url: string, protocols?: string | string[], options: WebSocket.ClientOptions = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
    const read = wsReader(ws);
    const frames: Opened['frames'] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (frames.length < 16) frames.push({ data, isBinary });
    });
    ws.once('open', () => resolve({ ws, read, frames }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () =>
        reject(
          Object.assign(new Error(`refused ${res.statusCode}: ${text.trim()}`), {
            status: res.statusCode,
            reason: text.trim(),
            header: res.headers['x-zstack-console-error'],
          }),
        ),
      );
    });
    ws.once('error', reject);
  });
}

export interface RefusedError extends Error {
  status: number;
  reason: string;
}

export async function refused(url: string): Promise<RefusedError> {
  try {
    const { ws } = await openWs(url);
    ws.terminate();
  } catch (err) {
    return err as RefusedError;
  }
  throw new Error(`expected ${url} to be refused`);
}

/** RFB 3.8 with security None up to ServerInit; returns the desktop name and size. */
export async function rfbHandshake({ ws, read }: Opened) {
  const version = (await read(12)).toString('latin1');
  ws.send(Buffer.from('RFB 003.008\n'));
  const types = [...(await read(2))];
  ws.send(Buffer.from([1]));
  const securityResult = (await read(4)).readUInt32BE(0);
  ws.send(Buffer.from([1])); // ClientInit, shared
  const init = await read(24);
  const name = (await read(init.readUInt32BE(20))).toString('utf8');
  return { version, types, securityResult, width: init.readUInt16BE(0), height: init.readUInt16BE(2), name };
}

export async function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === ws.CLOSED) throw new Error('already closed');
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  return { code, reason: reason.toString() };
}
