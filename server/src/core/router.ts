// Routes come from the bundled spec: one fastify route per (method, URL template); operations sharing a URL
// (PUT .../actions) are told apart by the body's action key, as upstream does. Every request goes through the same
// stages, each a fastify hook: identify (preValidation: the operation, its path values and the request's headers) →
// authenticate → validate against the spec → build the message and authorize (preHandler) → execute (the handler:
// a query's reply, or check → run (sync) or a job (async, 202)); the job poll is its own route (long poll). The RPC
// endpoint (rpc.ts) injects REST requests, so it goes through the same stages. A stage's failure is answered by
// `stage`: errors always leave as ZStack's ErrorCode JSON with the right HTTP status.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ValidateFunction } from 'ajv';
import type { OperationId } from '@zstack-ts/openapi/helpers';
import { newUuid } from './ids.js';
import { noteCall } from './log.js';
import { repliesJson, sendRaw } from './raw-reply.js';
import { argErr, err, errorCode, toApiError } from './errors.js';
import { currentContext, deadlineSignal, raceAbort, runInContext, timeoutError, type CallContext, type SessionInfo } from './context.js';
import { SpecValidator, validationError } from './validation.js';
import { checkInput, headerTimeoutSeconds } from './input.js';
import { redactMessage, redactReply } from './secrets.js';
import type { ParameterDef, SpecOperation } from './spec.js';
import { checkThenRun, type Handler } from './handlers.js';
import type { JobService } from './jobs.js';
import type { QueryEngine, QueryParams, ReplyBuilder } from './query.js';
import type { JsonPage } from './json-page.js';
import { perfOf, type ChangeTracker, type Perf } from '../db/index.js';
import { WireFormat, assertNoForbiddenKeys, normalizeBodyKey } from './wire.js';
import { noteConnection, urgently } from './turns.js';
import { AdmissionQueue } from './admission.js';
import { Chunks, sendBody } from './chunks.js';

const COMMA = Buffer.from(',');
const JSON_TYPE = 'application/json; charset=utf-8';
const SUCCESS_END = Buffer.from('],"success":true}');
const SUCCESS_EMPTY_SCHEMA_END = Buffer.from('],"success":true,"schema":{}}');

export interface RouterDeps {
  doc: Record<string, any>;
  operations: SpecOperation[];
  handlers: Map<string, Handler<any>>;
  jobs: JobService;
  query: QueryEngine;
  db: import('../db/index.js').Db;
  authenticate(header: string | undefined): Promise<SessionInfo>;
  timeoutOf(op: SpecOperation, headerSeconds?: number): number;
  /** The permission check (core/permissions.ts): throws 403, or scopes a Normal account's query. */
  authorize?(op: SpecOperation, session: SessionInfo | undefined, msg: Record<string, unknown>): Promise<void>;
  /** Tests: check every successful reply against the spec (a mismatch is a 500). */
  validateResponses?: boolean;
  /** Calls in admission and the rate they are answered at: refuses calls that could not meet their deadline. */
  admission?: AdmissionQueue;
}

const QUERY_KEYS = new Set(['q', 'limit', 'start', 'count', 'replyWithCount', 'sort', 'sortBy', 'sortDirection', 'fields', 'groupBy']);
const JSON_POINTER_BODY = '/requestBody/content/application~1json/schema';
const JSON_POINTER_REPLY = '/responses/200/content/application~1json/schema';

interface Prepared {
  op: SpecOperation;
  pathNames: string[];
  validatePath?: ValidateFunction;
  validateQuery?: ValidateFunction;
  validateBody?: ValidateFunction;
  validateReply?: ValidateFunction;
  /** Query-string parameters the operation declares (others are ignored with a warning, as upstream). */
  queryNames: Set<string>;
  /** The reply's schema in the spec (for the `schema` map), when the reply is JSON. */
  replyPointer?: string;
}

/** `/zstack/v1/hosts/{uuid}/actions` → `/zstack/v1/hosts/:p0/actions` (positional, so ops may name vars differently). */
function routeOf(path: string): { url: string; names: string[] } {
  const names: string[] = [];
  const url = path.replace(/\{([^}]+)\}/g, (_, name) => `:p${names.push(name) - 1}`);
  return { url, names };
}

function objectSchema(params: ParameterDef[]) {
  return {
    type: 'object',
    properties: Object.fromEntries(params.map((p) => [p.name, SpecValidator.ref(p.pointer)])),
    required: params.filter((p) => p.required).map((p) => p.name),
  };
}

export function registerRoutes(app: FastifyInstance, deps: RouterDeps): void {
  const strict = SpecValidator.of(deps.doc);
  const coercing = SpecValidator.of(deps.doc, { coerce: true });
  // Request bodies: unknown fields are dropped, as upstream's Gson ignores them.
  const lenient = SpecValidator.of(deps.doc, { removeAdditional: true });
  const wire = new WireFormat(deps.doc);
  const groups = new Map<string, Prepared[]>();
  const byId = new Map<string, Prepared>();

  for (const op of deps.operations) {
    const { url, names } = routeOf(op.path);
    const pathParams = op.parameters.filter((p) => p.in === 'path');
    const queryParams = op.parameters.filter((p) => p.in === 'query');
    const prepared: Prepared = {
      op,
      pathNames: names,
      validatePath: pathParams.length ? coercing.compile(`${op.operationId}/path`, objectSchema(pathParams)) : undefined,
      validateQuery: queryParams.length ? coercing.compile(`${op.operationId}/query`, objectSchema(queryParams)) : undefined,
      validateBody: op.hasBody ? lenient.compile(`${op.operationId}/body`, SpecValidator.ref(op.pointer + JSON_POINTER_BODY)) : undefined,
      validateReply:
        deps.validateResponses && op.x.kind !== 'poll' && repliesJson(deps.doc, op)
          ? strict.compile(`${op.operationId}/reply`, SpecValidator.ref(op.pointer + JSON_POINTER_REPLY))
          : undefined,
      queryNames: new Set(op.x.kind === 'query' ? QUERY_KEYS : queryParams.map((q) => q.name)),
      replyPointer: op.x.kind !== 'poll' && repliesJson(deps.doc, op) ? op.pointer + JSON_POINTER_REPLY : undefined,
    };
    byId.set(op.operationId, prepared);
    const key = `${op.method} ${url}`;
    groups.set(key, [...(groups.get(key) ?? []), prepared]);
    for (const extra of op.x.optionalPaths ?? []) {
      const alt = routeOf(extra);
      const altKey = `${op.method} ${alt.url}`;
      groups.set(altKey, [...(groups.get(altKey) ?? []), { ...prepared, pathNames: alt.names }]);
    }
    if (op.x.kind === 'query' && op.x.byUuid) {
      const byUuid = routeOf(`${op.path}/{uuid}`);
      groups.set(`${op.method} ${byUuid.url}`, [{ ...prepared, pathNames: byUuid.names, validatePath: undefined }]);
    }
  }

  /** Upstream's `schema` map, added to a JSON reply of `apiName` (a copy; `reply` is not changed). */
  const withSchema = (apiName: string, body: unknown): unknown => {
    const pointer = byId.get(apiName)?.replyPointer;
    if (!pointer || !body || typeof body !== 'object') return body;
    const schema = wire.classSchema(pointer, body as Record<string, unknown>);
    // A reply without inventories (a count, an empty reply) goes out without the (empty) map.
    return Object.keys(schema).length ? { ...body, schema } : body;
  };
  /**
   * The end of a page's reply rendered as text: `],"success":true` and the `schema` map. Row i's entries are those a
   * reply with the row's skeleton alone would have (`inventories[0]…`), renamed to `inventories[i]…`; memoized by
   * skeleton, and the whole end by (skeleton, row count) when every row has the same skeleton (most pages).
   */
  const rowSchemas = new Map<string, Array<[suffix: string, cls: string]>>();
  const uniformEnds = new Map<string, Buffer>();
  const pageEnd = (apiName: string, page: JsonPage): Buffer => {
    const pointer = byId.get(apiName)?.replyPointer;
    if (!page.rows.length) return SUCCESS_END;
    if (!pointer) return SUCCESS_EMPTY_SCHEMA_END;
    const first = page.rows[0].skeletonKey;
    const uniform = page.rows.every((row) => row.skeletonKey === first) ? `${apiName} ${first} ${page.rows.length}` : undefined;
    const known = uniform && uniformEnds.get(uniform);
    if (known) return known;
    const out: string[] = [];
    page.rows.forEach((row, i) => {
      const key = `${apiName} ${row.skeletonKey}`;
      let entries = rowSchemas.get(key);
      if (!entries) {
        const map = wire.classSchema(pointer, { inventories: [row.skeleton()] });
        entries = Object.entries(map).map(([path, cls]) => [path.slice('inventories[0]'.length), JSON.stringify(cls)]);
        if (rowSchemas.size < 10_000) rowSchemas.set(key, entries);
      }
      for (const [suffix, cls] of entries) out.push(`"inventories[${i}]${suffix}":${cls}`);
    });
    const end = Buffer.from(`],"success":true,"schema":{${out.join(',')}}}`);
    if (uniform && uniformEnds.size < 1_000) uniformEnds.set(uniform, end);
    return end;
  };
  const env: Env = { deps, admission: deps.admission ?? new AdmissionQueue(), perf: perfOf(deps.db), wire, withSchema, pageEnd };
  if (!app.hasRequestDecorator('zstack')) app.decorateRequest('zstack', null);
  app.server.on('connection', noteConnection);
  for (const [key, prepared] of groups) {
    const [method, url] = key.split(' ');
    const identify = stage(env, (req, reply) => identifyStage(prepared, req, reply, env));
    if (prepared.length === 1 && prepared[0].op.x.kind === 'poll') {
      app.route({ method: method as 'GET', url, preValidation: identify, handler: stage(env, longPollStage) });
      continue;
    }
    app.route({
      method: method as 'GET',
      url,
      preValidation: identify,
      preHandler: [stage(env, authenticateStage), stage(env, validateStage), stage(env, messageStage)],
      handler: stage(env, executeStage),
    });
  }
}

interface Env {
  deps: RouterDeps;
  admission: AdmissionQueue;
  /** The database's performance layer: the freshness sync, the read cache for sessions. */
  perf: Perf | undefined;
  wire: WireFormat;
  withSchema(apiName: string, body: unknown): unknown;
  pageEnd(apiName: string, page: JsonPage): Buffer;
}

/** What the stages learn about a request, in order (on `req.zstack`). */
interface ApiRequest {
  /** The API's deadline counts from here: authentication, validation and checks are inside its budget. */
  arrivedAt: number;
  route: Prepared;
  body?: Record<string, unknown>;
  path: Record<string, unknown>;
  /** Set once the operation and the request's headers are understood: from then on a failure is the API's. */
  call?: ApiCall;
  /** The change tracker, synced with the other nodes on arrival (when a cache is on: `Perf.fresh`). */
  changes?: ChangeTracker;
  /** The query string as the operation declares it. */
  query?: Record<string, unknown>;
  /** Leaves the admission queue (admission.ts): at the answer, or once an async API's job is running. */
  admitted?: () => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    zstack: ApiRequest | null;
  }
}

type Stage = (req: FastifyRequest, reply: FastifyReply, env: Env) => unknown;

/**
 * A stage as a fastify hook or handler: its failure is answered here (as the API's when the call is known, see
 * `apiFailure`) and ends the request.
 */
function stage(env: Env, run: Stage) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      // A caller waits on every stage: their turns go before running jobs' (core/turns.ts).
      await urgently(() => run(req, reply, env));
    } catch (e) {
      const call = req.zstack?.call;
      if (call && !directErrors(req)) await apiFailure(env, req, reply, call, req.zstack!.arrivedAt, e).catch((x) => sendError(reply, x));
      else sendError(reply, e);
      return reply;
    }
  };
}

/** Upstream adds the `schema` map to every reply when the request carries `X-JSON-Schema` (its SDKs always do). */
const wantsSchema = (req: FastifyRequest) => req.headers['x-json-schema'] !== undefined && req.headers['x-json-schema'] !== 'false';

/** Stage 1: which operation (the body's action key), its path values, and the request's own headers. */
function identifyStage(group: Prepared[], req: FastifyRequest, reply: FastifyReply, env: Env): void {
  const arrivedAt = Date.now();
  const raw = (req.body ?? undefined) as Record<string, unknown> | undefined;
  assertNoForbiddenKeys(raw);
  const route = pickOperation(group, raw, req.url);
  const { op } = route;
  noteCall(req, { op: op.operationId });
  const positional = req.params as Record<string, string>;
  const path: Record<string, unknown> = {};
  route.pathNames.forEach((name, i) => (path[name] = positional[`p${i}`]));
  const r: ApiRequest = { arrivedAt, route, body: normalizeBodyKey(raw, op), path };
  req.zstack = r;
  if (op.x.kind === 'poll') return;
  // The request's own headers are REST-layer matters (a bad one is a 400, as upstream's RestException).
  const timeoutSeconds = headerTimeoutSeconds(req.headers['x-api-timeout']);
  const waitSeconds = op.x.kind === 'async' ? preferredWait(req.headers.prefer) : undefined;
  const jobHeader = req.headers['x-job-uuid'];
  let jobUuid = newUuid();
  let retried = false;
  if (jobHeader !== undefined && op.x.kind === 'async') {
    if (typeof jobHeader !== 'string' || !/^[0-9a-fA-F]{32}$/.test(jobHeader)) {
      throw argErr(`header X-Job-UUID must be 32 hex characters (a uuid without dashes), got [${jobHeader}]`);
    }
    jobUuid = jobHeader.toLowerCase();
    retried = true;
  }
  // From here on a failure is the API's own: answered as upstream does (see `apiFailure`) unless asked otherwise.
  r.call = { op, jobUuid, retried, timeoutSeconds, waitSeconds, msg: {} };
  // Shed load: a call that would wait past its deadline behind the calls being admitted is refused now (admission.ts).
  const refusal = env.admission.refusal(env.deps.timeoutOf(op, timeoutSeconds) - (Date.now() - arrivedAt));
  if (refusal) throw refusal;
  r.admitted = env.admission.enter();
  reply.raw.once('close', r.admitted);
}

/**
 * Stage 2: the session. First the request's one freshness sync (other nodes' commits reflected, for the session,
 * a Query API's reply and the call's cached reads), then the session, from the read cache when it is on: reused
 * for a second (up to two while one caller refreshes it) while the tables `authenticate` read are unchanged (a
 * logout or expiry change on any node drops it at the next sync). Within that time a session past its expiry date
 * is still accepted; `authenticate` itself runs every second or two per session, so its sliding expiry works.
 */
async function authenticateStage(req: FastifyRequest, _reply: FastifyReply, { deps, perf }: Env): Promise<void> {
  const r = req.zstack!;
  const call = r.call!;
  const { op } = call;
  r.changes = perf && (op.x.kind === 'query' || !op.x.public) ? await perf.fresh() : undefined;
  if (op.x.public) return;
  const header = req.headers.authorization;
  call.session = perf ? await perf.read(Boolean(r.changes), `session:${header ?? ''}`, 1000, () => deps.authenticate(header)) : await deps.authenticate(header);
  noteCall(req, { account: call.session.accountUuid });
}

/** Stage 3: path, query string and body against the spec. */
function validateStage(req: FastifyRequest, _reply: FastifyReply, { wire }: Env): void {
  const r = req.zstack!;
  const { route: p, body, path } = r;
  const { op } = p;
  // Strings PostgreSQL cannot store, numbers past 2^53, prototype keys: refused before anything reads them.
  checkInput(path, '');
  checkInput(req.query, '');
  checkInput(body, '');
  if (p.validatePath && !p.validatePath(path)) throw validationError(p.validatePath.errors, '');
  const query = normalizeQuery(req.query as Record<string, unknown>, op);
  if (p.validateQuery && !p.validateQuery(query)) throw validationError(p.validateQuery.errors, '');
  r.query = query;
  if (p.validateBody) {
    if (body === undefined && op.bodyRequired) throw argErr(`the body is missing; this API takes {"${op.x.bodyKey}": {...}}`);
    if (body !== undefined) wire.dropUnset(op, body);
    if (body !== undefined && !p.validateBody(body)) throw validationError(p.validateBody.errors, '');
  } else if (body !== undefined && Object.keys(body).length > 0 && op.method !== 'GET' && op.method !== 'DELETE') {
    throw argErr('this API takes no body');
  }
}

/** Stage 4: the API message (body, declared query parameters, path), then the permission check on it. */
async function messageStage(req: FastifyRequest, _reply: FastifyReply, { deps }: Env): Promise<void> {
  const r = req.zstack!;
  const { route: p, body, path } = r;
  const call = r.call!;
  const { op } = call;
  const inner = (op.x.bodyKey ? (body?.[op.x.bodyKey] as Record<string, unknown>) : undefined) ?? {};
  const msg: Record<string, unknown> = { ...inner };
  call.msg = msg;
  for (const [k, v] of Object.entries(r.query!)) {
    if (p.queryNames.has(k)) msg[k] = v;
    else warnUnknownQueryParameter(op.operationId, k);
  }
  Object.assign(msg, path);
  // GET /<resources>/{uuid} is the query with the condition uuid=<uuid> (upstream's by-uuid form).
  if (op.x.kind === 'query' && typeof path.uuid === 'string') msg.q = [...([] as unknown[]).concat(msg.q ?? []), `uuid=${path.uuid}`];
  if (body?.systemTags && !msg.systemTags) msg.systemTags = body.systemTags;
  if (body?.userTags && !msg.userTags) msg.userTags = body.userTags;
  await deps.authorize?.(op, call.session, msg);
}

/** Stage 5: the work — a Query API's reply, a synchronous API's run, or an asynchronous API's job (202). */
async function executeStage(req: FastifyRequest, reply: FastifyReply, env: Env): Promise<void> {
  const { deps } = env;
  const r = req.zstack!;
  const call = r.call!;
  const { op, msg } = call;
  const p = r.route;
  // A cached query reply goes out without a call context (no deadline timer to arm for a map look-up).
  if (r.changes && op.x.kind === 'query') {
    const hit = deps.query.cached(deps.db, op.x.query!, msg as QueryParams);
    if (hit) return sendBody(reply, hit, JSON_TYPE);
  }
  const timeoutMs = deps.timeoutOf(op, call.timeoutSeconds);
  const now = r.arrivedAt;
  // The call's own deadline timer (checks, sync and query APIs); an async API's job arms its own.
  const deadline = deadlineSignal(now + timeoutMs);
  try {
    const ctx: CallContext = {
      apiName: op.operationId,
      startedAt: now,
      deadline: now + timeoutMs,
      timeoutMs,
      signal: deadline.signal,
      session: call.session,
      clientIp: req.ip,
      origin: `${req.protocol}://${req.host}`,
      changesSynced: Boolean(r.changes),
      // Named in a SYS.1001 when the deadline falls outside any step.
      trace: { steps: [], phase: `${op.operationId}/check` },
    };
    const finish = (result: unknown) => {
      const out = { ...(result as object), success: true };
      // Replies with `fields` carry partial inventories by design; everything else must match the spec exactly.
      const partial = op.x.kind === 'query' && msg.fields;
      if (p.validateReply && !partial && !p.validateReply(out)) {
        throw err('SYS.1000', `reply of ${op.operationId} does not conform to the spec: ${JSON.stringify(p.validateReply.errors?.slice(0, 3))}`);
      }
      return out;
    };

    if (op.x.kind === 'query') {
      // Query replies always carry the `schema` map (so it is part of the cached reply too).
      const finishQuery: ReplyBuilder = {
        object: (result) => env.withSchema(op.operationId, finish(result)) as object,
        // The same reply from a page PostgreSQL rendered (key order as above: total, inventories, success, schema).
        page: (page) => {
          const parts: Buffer[] = [Buffer.from(`{${page.total === undefined ? '' : `"total":${page.total},`}"inventories":[`)];
          page.rows.forEach((row, i) => (i ? parts.push(COMMA, row.json) : parts.push(row.json)));
          parts.push(env.pageEnd(op.operationId, page));
          const body = new Chunks(parts);
          if (p.validateReply) {
            const { schema: _schema, ...checked } = JSON.parse(body.toString());
            finish(checked);
          }
          return body;
        },
      };
      // The reply's JSON, from the query engine's reply cache or computed (and checked by `finish`) and cached.
      const body = await runInContext(ctx, () => deps.query.reply(deps.db, op.x.query!, msg as QueryParams, finishQuery, { synced: Boolean(r.changes) }));
      return sendBody(reply, body, JSON_TYPE);
    }
    const handler = deps.handlers.get(op.operationId);
    if (!handler) throw err('SYS.1014', `API ${op.operationId} is not implemented`);
    const bounded = <T>(work: () => Promise<T>) => runInContext(ctx, () => raceAbort(ctx.signal, work(), () => timeoutError(ctx)));

    let run: (runCall: CallContext) => Promise<unknown>;
    try {
      run = await bounded(() => checkThenRun(handler, msg as never, ctx));
    } catch (e) {
      // A check the first run has made fail (e.g. "resourceUuid already used") answers a retry with its job. A
      // check that passes needs no look-up: the job's insert finds an existing job by its uuid.
      const existing = call.retried ? await deps.jobs.get(call.jobUuid) : undefined;
      if (existing && existing.apiName !== op.operationId) {
        throw argErr(`duplicate job uuid[${call.jobUuid}]: it belongs to a ${existing.apiName} call, not ${op.operationId}`);
      }
      if (existing) return await acceptedAnswer(env, req, reply, call.jobUuid, existing.timeoutMs, call.waitSeconds);
      // Not the job's failure: the API's (answered by `apiFailure` without a job of its own yet).
      throw e;
    }
    if (op.x.kind === 'sync') {
      ctx.trace.phase = `${op.operationId}/run`;
      const result = await bounded(() => run(ctx));
      if (sendRaw(reply, result)) return;
      const out = finish(result);
      return void reply.code(200).send(wantsSchema(req) ? env.withSchema(op.operationId, out) : out);
    }

    const { job } = await deps.jobs.submit({
      uuid: call.jobUuid,
      apiName: op.operationId,
      // The stored copy never holds a secret (spec-marked fields redacted); the handler gets the message itself.
      request: redactMessage(op, msg),
      redactReply: (res) => redactReply(op, res),
      timeoutMs,
      startedAt: now,
      session: call.session,
      origin: ctx.origin,
      changesSynced: ctx.changesSynced,
      webHook: typeof req.headers['x-web-hook'] === 'string' ? req.headers['x-web-hook'] : undefined,
      run: async () => {
        const res = await run(currentContext()!);
        finish(res);
        return res;
      },
    });
    // Admitted: a `Prefer: wait` answer may now wait for the job, but not as a call in admission.
    r.admitted?.();
    return await acceptedAnswer(env, req, reply, job.uuid, job.timeoutMs, call.waitSeconds);
  } finally {
    deadline.dispose();
  }
}

/** The poll of an API job (`GET /zstack/v1/api-jobs/{uuid}`), a long poll with `X-Job-Wait-Ms`. */
async function longPollStage(req: FastifyRequest, reply: FastifyReply, env: Env): Promise<void> {
  const uuid = String(req.zstack!.path.uuid);
  const waitMs = req.headers['x-job-wait-ms'];
  const ms = waitMs === undefined ? 0 : typeof waitMs === 'string' && /^\d{1,5}$/.test(waitMs.trim()) ? Number(waitMs) : NaN;
  if (!(ms >= 0 && ms <= 30_000)) throw argErr(`header X-Job-Wait-Ms[${String(waitMs)}] must be an integer from 0 to 30000`);
  const answer = await jobAnswer(env, uuid, ms, reply);
  reply.code(answer.status).send(answer.body);
}

interface ApiCall {
  op: SpecOperation;
  jobUuid: string;
  /** The job uuid came from the caller (X-Job-UUID): a retry may find its job. */
  retried: boolean;
  timeoutSeconds?: number;
  waitSeconds?: number;
  session?: SessionInfo;
  msg: Record<string, unknown>;
}

/**
 * `X-ZStack-Errors: direct` (our SDK and CLI send it): an API's failure before its job exists is answered at once
 * with its own status (400 SYS.1007, 401 ID.1001, 403 ID.1002, 404 SYS.1003, 409 wrong state, 503 other).
 */
const directErrors = (req: FastifyRequest) => req.headers['x-zstack-errors'] === 'direct';

/**
 * Upstream's status contract (decision 3), for every client that does not ask for direct errors: every failure of an
 * asynchronous API — bad argument, unknown resource, invalid session, missing permission, wrong state — is a job
 * that failed (202, then 503 `{"error"}` on its poll, or at once with `Prefer: wait`), and every failure of a
 * synchronous API is a 503 with its ErrorCode, since upstream's SDKs read an ErrorCode only there.
 */
async function apiFailure(env: Env, req: FastifyRequest, reply: FastifyReply, call: ApiCall, arrivedAt: number, e: unknown): Promise<void> {
  const { deps } = env;
  const apiError = toApiError(e);
  // Throttling (429 with Retry-After) keeps its answer: it is about the client's pace, not the API's outcome.
  if (apiError.httpStatus === 429) return sendError(reply, apiError);
  if (call.op.x.kind !== 'async') return void reply.code(503).send({ error: apiError.error });
  const timeoutMs = deps.timeoutOf(call.op, call.timeoutSeconds);
  const { job } = await deps.jobs.submit({
    uuid: call.jobUuid,
    apiName: call.op.operationId,
    request: redactMessage(call.op, call.msg),
    timeoutMs,
    startedAt: arrivedAt,
    session: call.session,
    webHook: typeof req.headers['x-web-hook'] === 'string' ? req.headers['x-web-hook'] : undefined,
    run: () => Promise.reject(apiError),
  });
  await acceptedAnswer(env, req, reply, job.uuid, job.timeoutMs, call.waitSeconds);
}

/**
 * The answer to an accepted call: 202 with the job's location; with `Prefer: wait=N`, the job is first waited for
 * (the long poll's wait) and, when it has finished by then, the answer is the poll's for that job.
 */
async function acceptedAnswer(env: Env, req: FastifyRequest, reply: FastifyReply, uuid: string, apiTimeout: number, waitSeconds?: number): Promise<void> {
  const location = `${req.protocol}://${req.headers.host ?? 'localhost'}/zstack/v1/api-jobs/${uuid}`;
  if (waitSeconds !== undefined) {
    const answer = await jobAnswer(env, uuid, waitSeconds * 1000, reply);
    if (answer.status !== 202) {
      return void reply.code(answer.status).header('location', location).header('preference-applied', `wait=${waitSeconds}`).send(answer.body);
    }
  }
  reply.code(202).header('location', location).send({ location, apiTimeout });
}

function pickOperation(group: Prepared[], body: Record<string, unknown> | undefined, url: string): Prepared {
  if (group.length === 1) return group[0];
  const keys = body && typeof body === 'object' ? Object.keys(body) : [];
  const found = group.find((p) => p.op.x.bodyKey && keys.includes(p.op.x.bodyKey));
  if (!found) {
    throw argErr(`the body doesn't contain action mapping to the URL[${url.split('?')[0]}]; expected one of: ${group.map((p) => p.op.x.bodyKey).join(', ')}`);
  }
  return found;
}

/** Upstream's query-string forms: `list.0=a&list.1=b` and map fields `field.key=value`. */
function normalizeQuery(raw: Record<string, unknown>, op: SpecOperation): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw ?? {})) {
    const dot = k.indexOf('.');
    if (dot < 0) {
      out[k] = v;
      continue;
    }
    const base = k.slice(0, dot);
    const def = op.parameters.find((p) => p.name === base && p.in === 'query');
    if (!def) continue;
    if (def.schema.type === 'array') out[base] = [...((out[base] as unknown[]) ?? []), ...([] as unknown[]).concat(v)];
    else if (def.schema.type === 'object') {
      const map = (out[base] ??= {}) as Record<string, unknown[]>;
      const sub = k.slice(dot + 1);
      map[sub] = [...(map[sub] ?? []), ...([] as unknown[]).concat(v)];
    }
  }
  return out;
}

/**
 * What `GET /zstack/v1/api-jobs/{uuid}` answers for a job (the poll, and an async call's `Prefer: wait=N`): 202 `{}`
 * while it runs, 200 with its reply, 503 with its error, 404 when unknown. A job running in this process is still
 * processing: answered from memory, without reading its row. With `waitMs` (long poll), it is first waited for, up
 * to that long or until the client goes away.
 */
async function jobAnswer(env: Env, uuid: string, waitMs: number, reply: FastifyReply): Promise<{ status: number; body: unknown }> {
  const { deps } = env;
  if (deps.jobs.isRunningHere(uuid)) {
    if (waitMs > 0) await waitForJob(deps.jobs, uuid, waitMs, reply);
    if (deps.jobs.isRunningHere(uuid)) {
      const progress = deps.jobs.progressOf(uuid);
      return { status: 202, body: progress ? { progress } : {} };
    }
  }
  const job = await deps.jobs.get(uuid);
  if (!job) return { status: 404, body: { error: errorCode('SYS.1003', `job[uuid:${uuid}] is unknown or has expired`) } };
  if (job.status === 'processing') return { status: 202, body: {} };
  // As upstream, the poll's own `X-JSON-Schema` decides whether the reply carries the `schema` map.
  if (job.status === 'done') return { status: 200, body: wantsSchema(reply.request) ? env.withSchema(job.apiName, job.result) : job.result };
  return { status: 503, body: { error: job.error } };
}

/** Resolves when the job running in this process has its outcome recorded, after `ms`, or when the client goes away. */
async function waitForJob(jobs: JobService, uuid: string, ms: number, reply: FastifyReply): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onClose: (() => void) | undefined;
  await Promise.race([
    jobs.wait(uuid).catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      onClose = resolve;
      reply.raw.once('close', onClose);
    }),
  ]);
  clearTimeout(timer);
  reply.raw.off('close', onClose!);
}

/**
 * RFC 7240 `Prefer`: the seconds of its first `wait` preference (1–30), undefined without one. Other preferences,
 * later `wait`s and parameters (`;...`) are ignored; a `wait` that is not a whole number of seconds from 1 to 30 is
 * refused (400).
 */
export function preferredWait(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  for (const preference of splitUnquoted(([] as string[]).concat(header).join(','), ',')) {
    const [head] = splitUnquoted(preference, ';');
    const eq = head.indexOf('=');
    if ((eq < 0 ? head : head.slice(0, eq)).trim().toLowerCase() !== 'wait') continue;
    const raw = eq < 0 ? undefined : head.slice(eq + 1).trim();
    const value = raw && /^".*"$/.test(raw) ? raw.slice(1, -1) : raw;
    if (value === undefined || !/^\d{1,2}$/.test(value) || Number(value) < 1 || Number(value) > 30) {
      throw argErr(`header Prefer: wait must be a whole number of seconds from 1 to 30, got [${(raw ?? '').slice(0, 64)}]`);
    }
    return Number(value);
  }
  return undefined;
}

/** `text` split at `sep` outside quoted strings (RFC 9110 quoted-string, backslash escapes). */
function splitUnquoted(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === sep && !quoted) {
      parts.push(current);
      current = '';
      continue;
    }
    current += c;
    if (quoted && c === '\\') current += text[++i] ?? '';
    else if (c === '"') quoted = !quoted;
  }
  parts.push(current);
  return parts;
}

/** An error as the caller sees it: unexpected ones are SYS.1000 with a correlation id (logged by toApiError). */
export function sendError(reply: FastifyReply, e: unknown): void {
  const apiError = toApiError(e);
  const retryAfter = apiError.error.opaque?.retryAfterSeconds;
  if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  reply.code(apiError.httpStatus).send({ error: apiError.error });
}

export type { OperationId };

// Upstream logs unknown query parameters and goes on; a caller must not be able to flood the log with them: each
// (operation, name) is logged once, and at most 1,000 names in all.
const unknownQueryParametersSeen = new Set<string>();
function warnUnknownQueryParameter(operationId: string, name: string): void {
  const key = `${operationId} ${name.slice(0, 64)}`;
  if (unknownQueryParametersSeen.has(key) || unknownQueryParametersSeen.size >= 1000) return;
  unknownQueryParametersSeen.add(key);
  console.warn(`[api] ${operationId}: unknown query parameter[${JSON.stringify(name.slice(0, 64))}], ignored (logged once)`);
}
