// The console proxy's one WebSocket listener: `ws(s)://<host>:<port>/?token=<token>` → the VNC endpoint the token is
// bound to, frames forwarded both ways with backpressure (websockify-compatible: plain binary frames, or the
// `binary` / `base64` subprotocols). A token opens one connection; the connection lives until it is idle too long,
// either side closes, or its token/VM is revoked. Refused upgrades get HTTP 401/403 with the reason as text.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AgentLog } from '../lib/server.js';
import { TokenStore, type ConsoleToken } from './tokens.js';

export const DEFAULT_PROXY_PORT = 4900;

/** WebSocket close codes the proxy uses (4000-4999 are the application's). */
export const CLOSE = {
  targetClosed: 1000,
  shutdown: 1001,
  targetError: 1011,
  idle: 4000,
  revoked: 4001,
} as const;

export interface ConsoleProxyOptions {
  /** WebSocket listener port; default 4900, 0 = ephemeral. */
  port?: number;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Hostname/IP clients are told to connect to (upstream's consoleProxyOverriddenIp); default `host` unless a wildcard. */
  publicHostname?: string;
  /** PEM certificate and key: the listener speaks wss. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Budget for the TCP connection to the VNC server (default 10 s). */
  connectTimeoutMs?: number;
  log?: AgentLog;
  /** Clock, for tests. */
  now?: () => number;
}

/** Bytes queued towards the WebSocket client before reading from the VNC server pauses (until they drain). */
const HIGH_WATER = 4 * 1024 * 1024;
/** Reads from the VNC server go into buffers this big (fewer, larger frames when the screen changes a lot). */
const READ_BUFFER = 256 * 1024;
/** Smaller reads are copied out and the read buffer reused (interactive traffic stays cheap in memory). */
const COPY_BELOW = 16 * 1024;
const MAX_CLIENT_MESSAGE = 16 * 1024 * 1024;
const SWEEP_INTERVAL_MS = 60_000;
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

export class ConsoleProxy {
  readonly tokens: TokenStore;
  readonly scheme: 'ws' | 'wss';
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_CLIENT_MESSAGE,
    clientTracking: false,
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : protocols.has('base64') ? 'base64' : false),
  });
  private readonly connections = new Set<ProxyConnection>();
  private readonly pending = new Set<Duplex>();
  private server?: http.Server;
  private listening?: Promise<number>;
  private port?: number;
  private lastError?: string;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly log: AgentLog;

  constructor(private readonly opts: ConsoleProxyOptions = {}) {
    this.tokens = new TokenStore(opts.now);
    this.scheme = opts.tls ? 'wss' : 'ws';
    this.log = opts.log ?? (() => {});
    this.sweeper = setInterval(() => this.tokens.sweep((t) => this.connectionsOf(t) > 0), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /** Starts the listener if it is not up (again after a failure); resolves to its port. */
  ensureListening(): Promise<number> {
    if (this.closed) return Promise.reject(new Error('console proxy is closed'));
    if (this.port !== undefined) return Promise.resolve(this.port);
    this.listening ??= this.listen().then(
      (port) => {
        this.port = port;
        this.lastError = undefined;
        return port;
      },
      (err: Error) => {
        this.listening = undefined;
        this.lastError = err.message;
        this.log({ event: 'console-proxy-listen-failed', error: err.message });
        throw new Error(`console proxy cannot listen on ${this.opts.host ?? '127.0.0.1'}:${this.opts.port ?? DEFAULT_PROXY_PORT}: ${err.message}`);
      },
    );
    return this.listening;
  }

  /** Why the listener is down, if it is. */
  get listenError(): string | undefined {
    return this.lastError;
  }

  /** The hostname to give clients; undefined when listening on a wildcard address without a public one. */
  get advertisedHostname(): string | undefined {
    if (this.opts.publicHostname) return this.opts.publicHostname;
    const host = this.opts.host ?? '127.0.0.1';
    return ['0.0.0.0', '::', ''].includes(host) ? undefined : host;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  connectionsOf(token: string): number {
    let n = 0;
    for (const c of this.connections) if (c.token.token === token) n++;
    return n;
  }

  /** Revokes tokens and closes the live connections they (or the VM) opened. */
  revoke(by: { token?: string; vmUuid?: string }): { revoked: number; closedConnections: number } {
    const revoked = this.tokens.revoke(by).length;
    let closedConnections = 0;
    for (const c of [...this.connections]) {
      if ((by.token !== undefined && c.token.token === by.token) || (by.vmUuid !== undefined && c.token.vmUuid === by.vmUuid)) {
        c.close(CLOSE.revoked, 'console access revoked', 1000);
        closedConnections++;
      }
    }
    return { revoked, closedConnections };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const c of [...this.connections]) c.close(CLOSE.shutdown, 'console proxy shutting down', 0);
    for (const s of this.pending) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.wss.close();
  }

  private listen(): Promise<number> {
    const handler = (req: IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', connection: 'close', upgrade: 'websocket' });
      res.end('ZStack console proxy: open a WebSocket to /?token=<token>\n');
    };
    const server: http.Server = this.opts.tls ? https.createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, handler) : http.createServer(handler);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    server.on('clientError', (_err, socket) => socket.destroy());
    return new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? DEFAULT_PROXY_PORT, this.opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        server.on('error', (err) => this.log({ event: 'console-proxy-error', error: err.message }));
        if (this.closed) {
          server.close();
          reject(new Error('console proxy is closed'));
          return;
        }
        this.server = server;
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {}); // a client vanishing mid-handshake is normal
    const remote = req.socket.remoteAddress;
    const key = req.headers['sec-websocket-key'];
    const version = req.headers['sec-websocket-version'];
    if (
      req.method !== 'GET' ||
      req.headers.upgrade?.toLowerCase() !== 'websocket' ||
      typeof key !== 'string' ||
      !WS_KEY.test(key.trim()) ||
      (version !== '13' && version !== '8')
    ) {
      return reject(socket, 400, 'not a WebSocket handshake');
    }
    let token: string | null;
    try {
      token = new URL(req.url ?? '/', 'http://proxy').searchParams.get('token');
    } catch {
      token = null;
    }
    const claim = this.tokens.claim(token);
    if (!('token' in claim)) {
      this.log({ event: 'console-refused', remote, token: redact(token), reason: claim.reason });
      return reject(socket, claim.status, claim.reason);
    }
    const record = claim;
    this.pending.add(socket);
    const gone = () => {
      // the client left while we dialled the VNC server
      tcp.destroy();
      this.tokens.release(record);
      this.pending.delete(socket);
    };
    socket.once('close', gone);
    // Reads land in large pooled buffers handed on without copying (back to the pool once written); until the
    // connection exists they are kept.
    const early: Buffer[] = [];
    let sink: ((chunk: Buffer, whole?: Buffer) => boolean) | undefined; // false = stop reading until the client drains
    let readBuffer = takeReadBuffer();
    const tcp = net.connect({
      host: record.targetHostname,
      port: record.targetPort,
      onread: {
        buffer: () => readBuffer,
        callback: (n: number, buf: Uint8Array) => {
          if (n < COPY_BELOW || !sink) {
            // a copy; the read buffer is reused
            const chunk = Buffer.from(buf.subarray(0, n));
            if (!sink) early.push(chunk);
            else if (!sink(chunk)) tcp.pause();
          } else {
            const whole = readBuffer;
            readBuffer = takeReadBuffer();
            // Paused through pause() (not by returning false) so that resume() starts reading again.
            if (!sink(whole.subarray(0, n), whole)) tcp.pause();
          }
          return true;
        },
      },
    });
    tcp.once('close', () => giveReadBuffer(readBuffer));
    tcp.setNoDelay(true);
    tcp.setTimeout(this.opts.connectTimeoutMs ?? 10_000, () => tcp.destroy(new Error('timed out')));
    const dialFailed = (err: NodeJS.ErrnoException) => {
      if (socket.destroyed) return;
      socket.off('close', gone);
      this.pending.delete(socket);
      this.tokens.release(record);
      const reason = `cannot reach the VM's VNC server ${record.targetHostname}:${record.targetPort}: ${err.code ?? err.message}`;
      this.log({ event: 'console-target-unreachable', vmUuid: record.vmUuid, token: redact(record.token), reason });
      reject(socket, err.message === 'timed out' ? 504 : 502, reason);
    };
    tcp.once('error', dialFailed);
    tcp.once('connect', () => {
      tcp.off('error', dialFailed);
      tcp.on('error', () => {}); // until the connection takes it over
      tcp.setTimeout(0);
      socket.off('close', gone);
      this.pending.delete(socket);
      if (socket.destroyed || this.closed) {
        tcp.destroy();
        this.tokens.release(record);
        if (!socket.destroyed) socket.destroy();
        return;
      }
      // Revoked while dialling: refuse now.
      if (record.state !== 'opening') {
        tcp.destroy();
        return reject(socket, 403, 'token revoked');
      }
      this.tokens.opened(record);
      let upgraded = false;
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        const conn = new ProxyConnection(ws, tcp, record, this.opts.now ?? Date.now, () => {
          this.connections.delete(conn);
          this.log({ event: 'console-closed', vmUuid: record.vmUuid, token: redact(record.token), ...conn.stats() });
        });
        this.connections.add(conn);
        sink = (chunk, whole) => conn.toClient(chunk, whole);
        for (const chunk of early.splice(0)) if (!conn.toClient(chunk)) tcp.pause();
        this.log({ event: 'console-opened', vmUuid: record.vmUuid, token: redact(record.token), remote, protocol: ws.protocol || 'none' });
      });
      // ws answered the handshake with an error itself (it completes synchronously otherwise).
      if (!upgraded) tcp.destroy();
    });
  }
}

/** One client ↔ VNC server pair. */
class ProxyConnection {
  private lastActivity: number;
  private idleTimer?: NodeJS.Timeout;
  private done = false;
  private bytesToClient = 0;
  private bytesToServer = 0;
  private readonly base64: boolean;
  /** The WebSocket's own TCP socket: binary frames are written to it directly, header and payload in one writev. */
  private readonly raw: net.Socket;

  constructor(
    private readonly ws: WebSocket,
    private readonly tcp: net.Socket,
    readonly token: ConsoleToken,
    private readonly now: () => number,
    private readonly onDone: () => void,
  ) {
    this.base64 = ws.protocol === 'base64';
    this.raw = (ws as unknown as { _socket: net.Socket })._socket;
    this.lastActivity = now();
    // Backpressure towards the client: reading from the VNC server stops while too much is queued, until it drains.
    this.raw.on('drain', () => {
      if (!this.done && this.tcp.isPaused()) this.tcp.resume();
    });
    tcp.on('end', () => this.close(CLOSE.targetClosed, 'VNC server closed the connection'));
    tcp.on('close', () => this.close(CLOSE.targetClosed, 'VNC server closed the connection'));
    tcp.on('error', (err: NodeJS.ErrnoException) => this.close(CLOSE.targetError, `VNC connection error: ${err.code ?? err.message}`));
    // Backpressure towards the VNC server: stop reading client frames until it drains.
    tcp.on('drain', () => this.ws.resume());
    ws.on('message', (data: Buffer, isBinary: boolean) => this.toServer(data, isBinary));
    ws.on('close', () => this.finish());
    ws.on('error', () => this.finish());
    if (token.idleTimeoutMs > 0) this.armIdle(token.idleTimeoutMs);
  }

  stats() {
    return { bytesToClient: this.bytesToClient, bytesToServer: this.bytesToServer };
  }

  /**
   * Closes the WebSocket with a code and reason (after what is already queued) and drops the VNC side; terminates
   * the client's socket if the closing handshake has not finished after graceMs.
   */
  close(code: number, reason: string, graceMs = 10_000): void {
    if (this.done) return;
    this.finish();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(code, reason.slice(0, 120));
      if (graceMs === 0) this.ws.terminate();
      else setTimeout(() => this.ws.terminate(), graceMs).unref();
    }
  }

  /**
   * Sends bytes from the VNC server; `whole` is the pooled read buffer they live in, given back once written.
   * false = too much is queued, stop reading until the socket drains.
   */
  toClient(chunk: Buffer, whole?: Buffer): boolean {
    if (this.done) {
      if (whole) giveReadBuffer(whole);
      return false;
    }
    this.lastActivity = this.now();
    this.bytesToClient += chunk.length;
    if (this.base64) {
      this.ws.send(chunk.toString('base64'), { binary: false });
      if (whole) giveReadBuffer(whole);
    } else {
      this.raw.cork();
      this.raw.write(frameHeader(chunk.length));
      this.raw.write(chunk, whole && (() => giveReadBuffer(whole)));
      this.raw.uncork();
    }
    return this.raw.writableLength <= HIGH_WATER;
  }

  private toServer(data: Buffer, isBinary: boolean): void {
    if (this.done) return;
    this.lastActivity = this.now();
    const bytes = this.base64 && !isBinary ? Buffer.from(data.toString('latin1'), 'base64') : data;
    this.bytesToServer += bytes.length;
    if (!this.tcp.write(bytes)) this.ws.pause();
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const idle = this.now() - this.lastActivity;
      if (idle >= this.token.idleTimeoutMs) this.close(CLOSE.idle, `idle for ${this.token.idleTimeoutMs} ms`);
      else this.armIdle(this.token.idleTimeoutMs - idle);
    }, ms);
    this.idleTimer.unref();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.idleTimer);
    this.tcp.destroy();
    this.onDone();
  }
}

/** Read buffers shared by all connections, so streaming does not churn the garbage collector. */
const readBuffers: Buffer[] = [];
const READ_BUFFERS_KEPT = 32;

function takeReadBuffer(): Buffer {
  return readBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER);
}

/** Only for buffers nothing refers to any more (written out, or never handed on). */
function giveReadBuffer(buf: Buffer): void {
  if (readBuffers.length < READ_BUFFERS_KEPT) readBuffers.push(buf);
}

/** Header of an unmasked, final binary frame (server → client) with this payload length. */
function frameHeader(length: number): Buffer {
  if (length < 126) return Buffer.from([0x82, length]);
  if (length < 65536) return Buffer.from([0x82, 126, length >> 8, length & 0xff]);
  const h = Buffer.alloc(10);
  h[0] = 0x82;
  h[1] = 127;
  h.writeUIntBE(length, 4, 6);
  return h;
}

function reject(socket: Duplex, status: number, reason: string): void {
  if (socket.destroyed) return;
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Zstack-Console-Error: ${reason.replace(/[^\x20-\x7e]/g, '?')}\r\n` +
      '\r\n' +
      body,
  );
}

/** Enough of a token to follow it in logs, never the whole secret. */
function redact(token: string | null | undefined): string | undefined {
  return token ? `${token.slice(0, 6)}…` : undefined;
}
