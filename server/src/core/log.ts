// Structured logs through fastify's pino: one line per API call (operation, status, duration, job uuid, account —
// never a session, password or body), at the level `ZSTACK_LOG_LEVEL` asks for (default info), as JSON lines, or
// as short human lines when the output is a terminal.
import { Writable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What the router learns about a request that the access log line needs. */
export interface CallNote {
  op?: string;
  account?: string;
}
const notes = new WeakMap<FastifyRequest, CallNote>();

/** Called by the router once it knows the operation (and the caller's account). */
export function noteCall(req: FastifyRequest, note: CallNote): void {
  notes.set(req, { ...notes.get(req), ...note });
}

const PINO_LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'reqId']);

/** One JSON log line as a short human line: `12:00:01.234 INFO  api CreateZone 200 12ms job=… account=…`. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const level = (PINO_LEVELS[o.level as number] ?? String(o.level)).padEnd(5);
  const rest = Object.entries(o)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return `${time} ${level} ${o.msg ?? ''}${rest ? ` ${rest}` : ''}`;
}

/** A stream that writes each pino line in the human form. */
export function prettyStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) out.write(`${prettyLine(line)}\n`);
      cb();
    },
  });
}

/**
 * Logger options for Fastify: the level from `ZSTACK_LOG_LEVEL` (default `info`; an unknown value is refused),
 * pretty on a terminal, JSON lines otherwise (`ZSTACK_LOG_FORMAT=json|pretty` forces one).
 */
export function loggerOptions(env: NodeJS.ProcessEnv = process.env, out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout) {
  const level = (env.ZSTACK_LOG_LEVEL || 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`ZSTACK_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got [${env.ZSTACK_LOG_LEVEL}]`);
  }
  const pretty = env.ZSTACK_LOG_FORMAT ? env.ZSTACK_LOG_FORMAT === 'pretty' : !!out.isTTY;
  return { level, stream: pretty ? prettyStream(out) : out };
}

const JOB_IN_LOCATION = /\/api-jobs\/([0-9a-f]{32})/;

/** The access log: one line per API call once its reply is sent (requests outside the API are not logged). */
export function installApiLog(http: FastifyInstance): void {
  http.addHook('onResponse', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const note = notes.get(req);
    const path = req.url.split('?')[0];
    if (!note?.op && !path.startsWith('/zstack/v1/') && !path.startsWith('/zstack/api')) return done();
    const status = reply.statusCode;
    const location = reply.getHeader('location');
    const fromLocation = typeof location === 'string' ? JOB_IN_LOCATION.exec(location)?.[1] : undefined;
    const fromHeader = typeof req.headers['x-job-uuid'] === 'string' ? req.headers['x-job-uuid'] : undefined;
    const line = {
      op: note?.op ?? `${req.method} ${req.routeOptions?.url ?? path}`,
      status,
      ms: Math.round(reply.elapsedTime),
      job: fromLocation ?? (fromHeader && /^[0-9a-f]{32}$/.test(fromHeader) ? fromHeader : undefined),
      account: note?.account,
    };
    // 500 is a bug; other 5xx are failed operations (and an unreachable dependency); 4xx are the caller's.
    if (status === 500) req.log.error(line, 'api');
    else if (status > 500) req.log.warn(line, 'api');
    else req.log.info(line, 'api');
    done();
  });
}
