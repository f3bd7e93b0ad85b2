// Console proxy benchmark: bytes through our console proxy agent vs Debian's websockify, same machine, same client
// (the `ws` package), same VNC stand-in (a TCP server that streams or echoes). Both proxies run as their own
// process; the client and the stand-in share this one.
//
//   node --import tsx bench/console/run.ts [--mib 256] [--runs 5] [--rtts 2000] [--parallel 4] [--client light|ws]
//
// Prints a table and one JSON line. Needs /usr/bin/websockify (apt-get install websockify).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    runs: { type: 'string', default: '5' },
    rtts: { type: 'string', default: '2000' },
    parallel: { type: 'string', default: '4' },
    websockify: { type: 'string', default: '/usr/bin/websockify' },
    client: { type: 'string', default: 'light' },
  },
});
const STREAM_BYTES = Number(values.mib) * 1024 * 1024;
const RUNS = Number(values.runs);
const RTTS = Number(values.rtts);
const PARALLEL = Number(values.parallel);
const SECRET = 'bench-secret';
const AGENT_BIN = fileURLToPath(new URL('../../agents/bin/zstack-agent.mjs', import.meta.url));

// ------------------------------------------------------------------ the VNC stand-in
// First line from the client: "S <bytes>\n" → stream that many bytes; "E\n" → echo everything after it.
const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
function standIn(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const nl = head.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      const line = head.slice(0, nl);
      const rest = Buffer.from(head.slice(nl + 1), 'latin1');
      if (line === 'E') {
        if (rest.length) socket.write(rest);
        socket.on('data', (c: Buffer) => socket.write(c));
      } else if (line.startsWith('S ')) {
        let left = Number(line.slice(2));
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, CHUNK.length);
            left -= n;
            if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void socket.once('drain', pump);
          }
        };
        pump();
      }
    };
    socket.on('data', onData);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ------------------------------------------------------------------ transports: direct TCP, or a WebSocket URL
interface Conn {
  send(b: Buffer): void;
  onData(f: (b: Buffer) => void): void;
  close(): void;
}

async function tcpConn(port: number): Promise<Conn> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await once(s, 'connect');
  return { send: (b) => s.write(b), onData: (f) => s.on('data', f), close: () => s.destroy() };
}

/** The `ws` package as the client: it parses and delivers every message (costly enough to be the bottleneck). */
async function wsPackageConn(url: string): Promise<Conn> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await once(ws, 'open');
  ws.binaryType = 'nodebuffer';
  return { send: (b) => ws.send(b), onData: (f) => ws.on('message', (d: Buffer) => f(d)), close: () => ws.terminate() };
}

/**
 * A minimal WebSocket client: hand-made handshake, server frames walked without copying their payload (the
 * callback gets payload slices), client frames masked as RFC 6455 requires. Cheap, so the proxy is what limits.
 */
async function lightConn(url: string): Promise<Conn> {
  const u = new URL(url);
  const s = net.connect(Number(u.port), u.hostname);
  s.setNoDelay(true);
  await once(s, 'connect');
  s.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let head = Buffer.alloc(0);
  let early: Buffer;
  for (;;) {
    const [chunk] = (await once(s, 'data')) as [Buffer];
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) continue;
    if (!head.subarray(0, 12).toString().startsWith('HTTP/1.1 101')) throw new Error(`handshake refused: ${head.toString()}`);
    early = head.subarray(end + 4);
    break;
  }
  s.pause();
  let listener: (b: Buffer) => void = () => {};
  let partial: Buffer = Buffer.alloc(0); // the start of a frame header split across reads
  let payloadLeft = 0;
  const feed = (buf: Buffer) => {
    let i = 0;
    while (i < buf.length) {
      if (payloadLeft > 0) {
        const n = Math.min(payloadLeft, buf.length - i);
        listener(buf.subarray(i, i + n));
        payloadLeft -= n;
        i += n;
        continue;
      }
      const h = partial.length ? Buffer.concat([partial, buf.subarray(i, i + 14)]) : buf.subarray(i, i + 14);
      const len7 = h.length >= 2 ? h[1] & 0x7f : 0;
      const size = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
      if (h.length < size) {
        // wait for the rest of the header
        partial = Buffer.from(h);
        break;
      }
      payloadLeft = len7 === 126 ? h.readUInt16BE(2) : len7 === 127 ? Number(h.readBigUInt64BE(2)) : len7;
      if ((h[0] & 0x0f) >= 8) payloadLeft = 0; // control frames (never sent here) are skipped, not delivered
      i += size - partial.length;
      partial = Buffer.alloc(0);
    }
  };
  s.on('data', feed);
  const send = (b: Buffer) => {
    const mask = randomBytes(4);
    const header = b.length < 126 ? Buffer.from([0x82, 0x80 | b.length]) : Buffer.from([0x82, 0x80 | 126, b.length >> 8, b.length & 0xff]);
    const body = Buffer.alloc(b.length);
    for (let k = 0; k < b.length; k++) body[k] = b[k] ^ mask[k & 3];
    s.write(Buffer.concat([header, mask, body]));
  };
  return {
    send,
    onData: (f) => {
      listener = f;
      if (early.length) feed(early);
      s.resume();
    },
    close: () => s.destroy(),
  };
}

const wsConn = (url: string) => (values.client === 'ws' ? wsPackageConn(url) : lightConn(url));

type Dial = () => Promise<Conn>;

async function stream(dial: Dial, bytes: number): Promise<number> {
  const c = await dial();
  const started = process.hrtime.bigint();
  let got = 0;
  await new Promise<void>((resolve) => {
    c.onData((b) => {
      got += b.length;
      if (got >= bytes) resolve();
    });
    c.send(Buffer.from(`S ${bytes}\n`));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  c.close();
  return bytes / seconds / 1e6; // MB/s
}

async function rtts(dial: Dial, n: number): Promise<number[]> {
  const c = await dial();
  c.send(Buffer.from('E\n'));
  const msg = Buffer.alloc(32, 0x41);
  const out: number[] = [];
  let resolveOne: () => void = () => {};
  let got = 0;
  c.onData((b) => {
    got += b.length;
    if (got >= msg.length) {
      got -= msg.length;
      resolveOne();
    }
  });
  for (let i = 0; i < n + 50; i++) {
    const started = process.hrtime.bigint();
    await new Promise<void>((r) => {
      resolveOne = r;
      c.send(msg);
    });
    if (i >= 50) out.push(Number(process.hrtime.bigint() - started) / 1000); // µs, after 50 warm-up trips
  }
  c.close();
  return out;
}

// ------------------------------------------------------------------ the two proxies
async function startOurs(target: number): Promise<{ dial: Dial; stop(): void; pid: number }> {
  const nodeArgs = process.env.BENCH_AGENT_NODE_ARGS?.split(' ').filter(Boolean) ?? []; // e.g. --cpu-prof
  const child = spawn(process.execPath, [...nodeArgs, AGENT_BIN, 'console-proxy', '--port', '0', '--secret', SECRET, '--quiet'], {
    env: { ...process.env, ZSTACK_CONSOLE_PROXY_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const url = JSON.parse(line).listening as string;
  const post = async (path: string, body: unknown) =>
    (
      await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}`, 'x-zstack-target-uuid': 'mn' },
        body: JSON.stringify(body),
      })
    ).json() as Promise<Record<string, unknown>>;
  const dial: Dial = async () => {
    const est = await post('/console/establish', { vmUuid: 'bench', targetHostname: '127.0.0.1', targetPort: target, idleTimeoutMs: 0 });
    if (!est.success) throw new Error(String(est.error));
    return wsConn(`ws://127.0.0.1:${est.proxyPort}/?token=${est.token}`);
  };
  return { dial, stop: () => child.kill('SIGTERM'), pid: child.pid! };
}

async function startWebsockify(target: number): Promise<{ dial: Dial; stop(): void; pid: number }> {
  const port = await freePort();
  const child: ChildProcess = spawn(values.websockify!, [`127.0.0.1:${port}`, `127.0.0.1:${target}`], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    // wait until it listens
    try {
      const s = net.connect(port, '127.0.0.1');
      await once(s, 'connect');
      s.destroy();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { dial: () => wsConn(`ws://127.0.0.1:${port}/`), stop: () => child.kill('SIGTERM'), pid: child.pid! };
}

/**
 * CPU seconds a process has used, its reaped children included (websockify forks one per connection), from
 * /proc/<pid>/stat; a measure of the proxy's cost that does not depend on what else the machine is doing.
 */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// ------------------------------------------------------------------ run
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
};

const server = await standIn();
const target = (server.address() as AddressInfo).port;
const ours = await startOurs(target);
const wsf = await startWebsockify(target);
const direct: Dial = () => tcpConn(target);
const contenders: [string, Dial, number | undefined][] = [
  ['direct TCP', direct, undefined],
  ['zstack console proxy', ours.dial, ours.pid],
  ['websockify', wsf.dial, wsf.pid],
];

const results: Record<string, { mbps: number[]; parallelMbps: number[]; rtt: number[]; cpu: number; bytes: number }> = {};
for (const [name] of contenders) results[name] = { mbps: [], parallelMbps: [], rtt: [], cpu: 0, bytes: 0 };
try {
  for (const [, dial] of contenders) await stream(dial, 16 * 1024 * 1024); // warm-up
  await new Promise((r) => setTimeout(r, 300));
  for (let run = 0; run < RUNS; run++) {
    for (const [name, dial, pid] of contenders) {
      const cpuBefore = cpuSeconds(pid);
      results[name].mbps.push(await stream(dial, STREAM_BYTES));
      const started = process.hrtime.bigint();
      const each = Math.floor(STREAM_BYTES / PARALLEL);
      await Promise.all(Array.from({ length: PARALLEL }, () => stream(dial, each)));
      results[name].parallelMbps.push((each * PARALLEL) / (Number(process.hrtime.bigint() - started) / 1e9) / 1e6);
      await new Promise((r) => setTimeout(r, 300)); // websockify's per-connection children exit and are reaped
      results[name].cpu += cpuSeconds(pid) - cpuBefore;
      results[name].bytes += STREAM_BYTES + each * PARALLEL;
    }
  }
  for (const [name, dial] of contenders) results[name].rtt = await rtts(dial, RTTS);
} finally {
  ours.stop();
  wsf.stop();
  server.close();
}

const summary = Object.fromEntries(
  Object.entries(results).map(([name, r]) => [
    name,
    {
      mbps: Math.round(median(r.mbps)),
      parallelMbps: Math.round(median(r.parallelMbps)),
      rttMedianUs: Math.round(median(r.rtt)),
      rttP99Us: Math.round(pct(r.rtt, 0.99)),
      cpuMsPerGiB: Math.round((r.cpu * 1000) / (r.bytes / 2 ** 30)),
    },
  ]),
);
const o = summary['zstack console proxy'];
const w = summary.websockify;
const d = summary['direct TCP'];
const report = {
  bench: 'console-proxy',
  client: values.client,
  streamMiB: STREAM_BYTES / 1024 / 1024,
  runs: RUNS,
  rtts: RTTS,
  parallel: PARALLEL,
  results: summary,
  throughputRatio: +(o.mbps / w.mbps).toFixed(2),
  cpuPerByteRatio: +(o.cpuMsPerGiB / w.cpuMsPerGiB).toFixed(2),
  parallelThroughputRatio: +(o.parallelMbps / w.parallelMbps).toFixed(2),
  addedLatencyUs: { ours: o.rttMedianUs - d.rttMedianUs, websockify: w.rttMedianUs - d.rttMedianUs },
};
console.log('| path | 1 stream MB/s | %d streams MB/s | RTT median µs | RTT p99 µs | proxy CPU ms/GiB |', PARALLEL);
console.log('|---|---|---|---|---|---|');
for (const [name, s] of Object.entries(summary)) {
  console.log(`| ${name} | ${s.mbps} | ${s.parallelMbps} | ${s.rttMedianUs} | ${s.rttP99Us} | ${name === 'direct TCP' ? '-' : s.cpuMsPerGiB} |`);
}
console.log(JSON.stringify(report));
process.exit(0);
