// The 1.1 RPC protocol (../shared/reference/zstack-rpc-1.1.md), which 1.1's zstack-cli and Python apibinding speak:
// `POST /zstack/api` with `{"<message class>": {...fields, "session": {"uuid"}}}`, results polled at
// `GET /zstack/api/result/{uuid}`. Every API is reachable this way through its spec's `x-zstack-message`: the message
// is turned into the API's REST request and run by the same router (authentication, validation, checks, jobs,
// timeouts: one handler for both protocols); its answer is wrapped in 1.1's envelope. Every answer is HTTP 200 (404
// for an unknown result) with a JSON body that has `state: "Done"` or a `uuid`, so the CLI never polls forever.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { formatDate } from './dates.js';
import { errorCode, type ErrorCode } from './errors.js';
import type { JobService } from './jobs.js';
import type { SpecOperation } from './spec.js';
import { WireFormat } from './wire.js';

export interface RpcDeps {
  doc: Record<string, any>;
  operations: SpecOperation[];
  jobs: JobService;
}

/** The generic classes 1.1 keyed errors raised before the handler by (session, validation, unknown message). */
const GENERIC = { sync: 'org.zstack.header.message.APIReply', async: 'org.zstack.header.message.APIEvent' };

/** Codes of refusals 1.1 raised before the API's handler. */
const PRE_HANDLER = new Set(['ID.1001', 'ID.1002', 'SYS.1007']);

/** 1.1's query operators → the REST query grammar's. */
const QUERY_OPS: Record<string, string> = {
  '=': '=',
  '!=': '!=',
  '>': '>',
  '<': '<',
  '>=': '>=',
  '<=': '<=',
  in: '?=',
  'not in': '!?=',
  like: '~=',
  'not like': '!~=',
  'is null': ' is null',
  'is not null': ' not null',
};

/** Fields of 1.1's message base classes: never API fields. */
const BASE_FIELDS = new Set(['session', 'timeout', 'id', 'serviceId', 'createdTime', 'headers']);

const JOB_LOCATION = /\/api-jobs\/([0-9a-f]{32})$/;

class RpcError extends Error {
  constructor(readonly error: ErrorCode) {
    super(error.details ?? error.description);
  }
}

/** Gson leaves null members out; the CLI reads a null as missing. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = withoutNulls(v);
  return out;
}

export function registerRpc(app: FastifyInstance, deps: RpcDeps): void {
  const wire = new WireFormat(deps.doc);
  const byMessage = new Map<string, SpecOperation>();
  const byId = new Map<string, SpecOperation>();
  for (const op of deps.operations) {
    if (op.x.message) byMessage.set(op.x.message, op);
    byId.set(op.operationId, op);
  }
  const kindOf = (op: SpecOperation) => (op.x.kind === 'async' ? 'async' : 'sync');
  /** The `Done` envelope: `result` is the reply as a JSON string keyed by its class. */
  const done = (cls: string, reply: Record<string, unknown>, uuid?: string) => ({
    ...(uuid ? { uuid } : {}),
    state: 'Done',
    createdDate: formatDate(new Date()),
    finishedDate: formatDate(new Date()),
    result: JSON.stringify({ [cls]: withoutNulls(reply) }),
  });
  const failed = (cls: string, error: ErrorCode, uuid?: string) => done(cls, { success: false, error }, uuid);

  /** The REST request a 1.1 message stands for. */
  const toRest = (op: SpecOperation, raw: Record<string, unknown>) => {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) if (!BASE_FIELDS.has(k) && v !== null && v !== undefined) fields[k] = v;
    // Refusals come back at once (the envelope carries them either way; this spares a poll).
    const headers: Record<string, string> = { 'x-zstack-errors': 'direct' };
    const session = raw.session as { uuid?: unknown } | undefined;
    if (!op.x.public && session && typeof session.uuid === 'string') headers.authorization = `OAuth ${session.uuid}`;
    const timeout = Number(raw.timeout);
    if (raw.timeout !== undefined && raw.timeout !== null && Number.isFinite(timeout) && timeout > 0) {
      headers['x-api-timeout'] = String(Math.max(1, Math.ceil(timeout / 1000)));
    }

    let url = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const value = fields[name];
      if (value === undefined || value === '') throw new RpcError(errorCode('SYS.1007', `field[${name}] is mandatory, can not be null`));
      delete fields[name];
      return encodeURIComponent(String(value));
    });
    const search = new URLSearchParams();
    let payload: unknown;
    if (op.x.kind === 'query') {
      for (const c of ([] as unknown[]).concat(fields.conditions ?? [])) {
        const { name, op: cop, value } = (c ?? {}) as { name?: unknown; op?: unknown; value?: unknown };
        const mapped = typeof cop === 'string' ? QUERY_OPS[cop] : undefined;
        if (typeof name !== 'string' || !name) throw new RpcError(errorCode('SYS.1007', 'a query condition has no name'));
        if (!mapped) {
          throw new RpcError(errorCode('SYS.1007', `invalid query op[${String(cop)}], valid ops are ${JSON.stringify(Object.keys(QUERY_OPS))}`));
        }
        search.append('q', mapped.startsWith(' ') ? `${name}${mapped}` : `${name}${mapped}${value ?? ''}`);
      }
      for (const key of ['limit', 'start', 'count', 'replyWithCount', 'sortBy', 'sortDirection', 'groupBy']) {
        if (fields[key] !== undefined) search.set(key, String(fields[key]));
      }
      if (fields.fields !== undefined) search.set('fields', ([] as unknown[]).concat(fields.fields).join(','));
    } else if (op.x.bodyKey) {
      // The body's fields, coerced by their types (1.1's clients send scalars as strings).
      const body = wire.coerce({ $ref: `${op.pointer}/requestBody/content/application~1json/schema` }, { [op.x.bodyKey]: fields }) as Record<string, unknown>;
      payload = body;
    } else {
      for (const p of op.parameters.filter((q) => q.in === 'query')) {
        const v = fields[p.name];
        if (v === undefined) continue;
        if (Array.isArray(v)) v.forEach((item) => search.append(p.name, String(item)));
        else if (v && typeof v === 'object') {
          for (const [k, items] of Object.entries(v)) for (const item of ([] as unknown[]).concat(items)) search.append(`${p.name}.${k}`, String(item));
        } else search.set(p.name, String(v));
      }
    }
    const qs = search.toString();
    if (qs) url += `?${qs}`;
    return { method: op.method, url, headers, payload };
  };

  /** Runs the REST request a message stands for, as the router would for the REST client (direct errors). */
  const run = async (request: { method: string; url: string; headers: Record<string, string>; payload?: unknown }) => {
    const res = await app.inject({
      method: request.method as 'GET',
      url: request.url,
      headers: request.payload !== undefined ? { ...request.headers, 'content-type': 'application/json' } : request.headers,
      payload: request.payload !== undefined ? JSON.stringify(request.payload) : undefined,
    });
    return { status: res.statusCode, headers: res.headers, json: parse(res.body) };
  };

  const handleCall = async (text: string) => {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      return failed(GENERIC.sync, errorCode('SYS.1007', `the body is not valid JSON: ${(e as Error).message.slice(0, 200)}`));
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return failed(GENERIC.sync, errorCode('SYS.1007', 'the body must be {"<message class>": {...}}'));
    }
    const keys = Object.keys(body);
    const key = keys.find((k) => byMessage.has(k));
    if (!key) {
      const named = keys[0] === undefined ? 'no message' : `message[${keys[0].slice(0, 200)}]`;
      return failed(GENERIC.sync, errorCode('SYS.1008', `${named}: no service can deal with it`));
    }
    const op = byMessage.get(key)!;
    const raw = (body as Record<string, unknown>)[key];
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      return failed(GENERIC[kindOf(op)], errorCode('SYS.1007', `the message ${key} must be a JSON object`));
    }
    let request;
    try {
      request = toRest(op, raw as Record<string, unknown>);
    } catch (e) {
      if (e instanceof RpcError) return failed(GENERIC[kindOf(op)], e.error);
      throw e;
    }
    const res = await run(request);
    const json = res.json;
    if (res.status === 202) {
      const uuid = JOB_LOCATION.exec(String(json?.location ?? res.headers.location ?? ''))?.[1];
      if (uuid) return { uuid, state: 'Processing', createdDate: formatDate(new Date()) };
    }
    if (res.status === 200 && json && typeof json === 'object') {
      const { schema: _schema, ...reply } = json as Record<string, unknown>;
      return done(op.x.replyClass!, reply);
    }
    const error: ErrorCode = json?.error ?? errorCode('SYS.1000', `the API answered HTTP ${res.status}`);
    // Refusals before the handler (session, permission, argument validation) are keyed by the generic class, as
    // 1.1's bus did (CloudBusImpl2.replyErrorToApiMessage); the handlers' failures by the API's own class.
    return failed(PRE_HANDLER.has(error.code) ? GENERIC[kindOf(op)] : op.x.replyClass!, error);
  };

  const handleResult = async (uuid: string, reply: FastifyReply) => {
    if (!/^[0-9a-f]{32}$/.test(uuid)) {
      return void reply.code(404).send(failed(GENERIC.async, errorCode('SYS.1003', `result[uuid:${uuid.slice(0, 64)}] is unknown`), uuid));
    }
    const res = await app.inject({ method: 'GET', url: `/zstack/v1/api-jobs/${uuid}` });
    if (res.statusCode === 202) return void reply.send({ uuid, state: 'Processing', createdDate: formatDate(new Date()) });
    const json = parse(res.body);
    if (res.statusCode === 404) {
      return void reply.code(404).send(failed(GENERIC.async, json?.error ?? errorCode('SYS.1003', `result[uuid:${uuid}] is unknown`), uuid));
    }
    const job = await deps.jobs.get(uuid);
    const op = job && byId.get(job.apiName);
    const cls = op?.x.replyClass ?? GENERIC.async;
    if (res.statusCode === 200 && json && typeof json === 'object') {
      const { schema: _schema, ...body } = json as Record<string, unknown>;
      return void reply.send(done(cls, body, uuid));
    }
    reply.send(failed(cls, json?.error ?? errorCode('SYS.1000', `the job answered HTTP ${res.statusCode}`), uuid));
  };

  app.register(async (scope) => {
    // The body is read here (not by the REST parser) so even bad JSON gets an envelope, never a bare HTTP error.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, text, next) => next(null, text));
    const call = async (req: { body: unknown }, reply: FastifyReply) => {
      try {
        reply.send(await handleCall(typeof req.body === 'string' ? req.body : ''));
      } catch (e) {
        console.error('[rpc] unexpected error:', e instanceof Error ? e.stack : e);
        reply.send(failed(GENERIC.sync, errorCode('SYS.1000', 'an internal error happened')));
      }
    };
    const result = async (req: { params: unknown }, reply: FastifyReply) => {
      try {
        await handleResult(String((req.params as { uuid: string }).uuid), reply);
      } catch (e) {
        console.error('[rpc] unexpected error:', e instanceof Error ? e.stack : e);
        reply.send(failed(GENERIC.async, errorCode('SYS.1000', 'an internal error happened')));
      }
    };
    for (const url of ['/zstack/api', '/zstack/api/']) {
      scope.post(url, call);
      scope.put(url, call);
    }
    scope.get('/zstack/api/result/:uuid', result);
    scope.put('/zstack/api/result/:uuid', result);
  });
}

function parse(text: string): any {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
