// The ZStack-TS client: one typed method per API (generated from the spec), sessions, job waiting, retries that are
// safe, cancellation, logging hooks with secrets redacted, and a curl form of any call.
import { createHash, randomUUID } from 'node:crypto';
import axios, { type AxiosInstance, type AxiosResponse, type CreateAxiosDefaults } from 'axios';
import { OPERATIONS, type GeneratedMethods, type OperationId } from './generated/operations.js';
import { parseDuration } from '@zstack-ts/openapi/duration';
import { SDK_ERRORS, ZStackError, type ErrorCodeJson } from './errors.js';
import { isoDates } from './dates.js';
import { normalizeQueryParams } from './query.js';
import { buildRequest, curlOf, redactHeaders, redactUrl, redactValue, type HttpRequest } from './request.js';
import type {
  CallOptions,
  CallParams,
  InventoryOf,
  JobHandle,
  JobProgress,
  OperationInfo,
  QueryAllOptions,
  QueryParams,
  ReplyOf,
  RetryOptions,
} from './types.js';

export type { JobHandle } from './types.js';

export interface ClientOptions {
  /** e.g. `http://localhost:8080`; default `$ZSTACK_ENDPOINT`. */
  endpoint?: string;
  /** Default `$ZSTACK_ACCOUNT` (or `$ZSTACK_ACCOUNT_NAME`, as the Pulumi provider reads it). */
  accountName?: string;
  /** Clear password; hashed with SHA-512 before it is sent, as upstream clients do. Default `$ZSTACK_PASSWORD`. */
  password?: string;
  /**
   * An existing session (e.g. from `zstack-cli`); with account credentials too, an expired one is replaced. Default
   * `$ZSTACK_SESSION`.
   */
  sessionUuid?: string;
  /**
   * Where the defaults above come from (default `process.env`); `false` reads no environment. Options given
   * explicitly always win.
   */
  env?: Record<string, string | undefined> | false;
  /**
   * axios settings for the client's instance (`zs.http`): `proxy` (off by default: the environment's HTTP_PROXY is
   * not applied unless you pass one), `httpAgent`/`httpsAgent` (TLS options, keep-alive, a proxy agent),
   * `maxContentLength`… The SDK sets `baseURL`, `validateStatus` and per-request `timeout`, `signal`, `headers`
   * itself. Request interceptors on `zs.http.interceptors` see (and may change) every request, retries included.
   */
  axios?: CreateAxiosDefaults;
  /** Default API timeout for every call (ms); the server's per-API default otherwise. */
  timeoutMs?: number;
  /** First interval between polls of a job (default 100 ms); grows ×1.5 per poll up to `maxPollIntervalMs`. */
  pollIntervalMs?: number;
  /** Longest interval between polls (default 2000 ms). */
  maxPollIntervalMs?: number;
  /** Retry policy for the requests that are safe to repeat (see README); `false` never retries. */
  retry?: RetryOptions | false;
  /** Logging hooks: every HTTP exchange, secrets redacted. */
  hooks?: ClientHooks;
  /** Refuse every API that changes something (only GETs, login/logout and GetVersion go out). */
  readOnly?: boolean;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * Date fields of replies (`createDate`, `lastOpDate`…): `'zstack'` (default) as the server sends them, upstream's
   * zone-less `Jan 30, 2016 3:01:03 PM` (UTC; read them with `parseZStackDate`); `'iso'` rewritten to ISO 8601 with
   * the zone, `2016-01-30T15:01:03.000Z`, which `new Date()` reads right.
   */
  dates?: 'zstack' | 'iso';
}

/** One HTTP exchange as the hooks see it: the Authorization value, passwords and session uuids are redacted. */
export interface RequestEvent {
  /** Same id for the request, its response/error and its retries. */
  id: number;
  apiName?: string;
  jobUuid?: string;
  /** 1 for the first try, 2 for the first retry… */
  attempt: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  /** The request as a curl command (redacted). */
  curl: string;
}
export interface ResponseEvent extends RequestEvent {
  status: number;
  durationMs: number;
  responseBody: unknown;
}
export interface ErrorEvent extends RequestEvent {
  /** The transport error, or for a retried HTTP status the status. */
  error: unknown;
  status?: number;
  durationMs: number;
  /** Whether the SDK will try again (after `delayMs`). */
  willRetry: boolean;
  delayMs?: number;
}
export interface ClientHooks {
  onRequest?(e: RequestEvent): void;
  onResponse?(e: ResponseEvent): void;
  onError?(e: ErrorEvent): void;
}

const DEFAULT_RETRY: Required<RetryOptions> = { retries: 4, baseDelayMs: 200, maxDelayMs: 5000 };
/** After the API timeout the client still waits this long, so the server's own timeout error (naming the step) wins. */
const GRACE_MS = 1000;
/**
 * How long a job poll asks the server to hold its answer while the job runs (X-Job-Wait-Ms), and an asynchronous call
 * asks the server to wait for its job before answering (`Prefer: wait=<seconds>`).
 */
const LONG_POLL_MS = 10_000;
/** Connection failures where the request never left this process: repeating is always safe. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const READ_ONLY_ALLOWED = new Set(['LogInByAccount', 'LogOut', 'GetVersion']);

export const hashPassword = (clear: string): string => createHash('sha512').update(clear).digest('hex');
export const newJobUuid = (): string => randomUUID().replace(/-/g, '');

/** An operation's timeout (`x-zstack-timeout`, checked by the generator), 30 minutes if unreadable. */
const timeoutMsOf = (text: string): number => parseDuration(text) ?? 30 * 60_000;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The errno-style code of a transport error (axios wraps Node's, and dual-stack connects raise AggregateErrors). */
function transportCode(e: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (x: unknown): string | undefined => {
    if (!x || typeof x !== 'object' || seen.has(x)) return undefined;
    seen.add(x);
    const o = x as { code?: unknown; cause?: unknown; errors?: unknown[] };
    if (typeof o.code === 'string' && o.code !== 'ERR_BAD_REQUEST' && o.code !== 'ERR_NETWORK') return o.code;
    return visit(o.cause) ?? (Array.isArray(o.errors) ? o.errors.map(visit).find(Boolean) : undefined);
  };
  return visit(e) ?? ((e as { code?: string })?.code || undefined);
}

/** An asynchronous call answered with its job's outcome (the server applied `Prefer: wait`), not with the job. */
const finalAnswer = (res: AxiosResponse): boolean => /^\s*wait\s*=/i.test(String(res.headers?.['preference-applied'] ?? ''));

const isZStackReply = (data: unknown): data is { error: ErrorCodeJson } =>
  !!data &&
  typeof data === 'object' &&
  !!(data as { error?: { code?: unknown } }).error &&
  typeof (data as { error: { code?: unknown } }).error.code === 'string';

interface ExchangeContext {
  apiName?: string;
  jobUuid?: string;
  /** Safe to send twice: a GET, or a request carrying X-Job-UUID. */
  idempotent: boolean;
  retry: RetryOptions | false;
  signal?: AbortSignal;
  /** Absolute time after which the call has timed out. */
  deadline?: number;
  /** Per-request timeout when there is no deadline. */
  requestTimeoutMs: number;
  /** Extra strings to hide from the hooks (e.g. the session uuid a login returns). */
  secrets?: (res: AxiosResponse) => string[];
  /** Strings of the request to hide (a session uuid passed as a parameter: LogOut, ValidateSession). */
  hide?: string[];
}

export interface ZStackClient extends GeneratedMethods {}

export class ZStackClient {
  readonly http: AxiosInstance;
  readonly endpoint: string;
  sessionUuid?: string;
  private loggingIn?: Promise<string>;
  private nextId = 1;

  /** The options in effect (the environment's defaults applied). */
  readonly options: ClientOptions & { endpoint: string };

  constructor(options: ClientOptions = {}) {
    const env = options.env === false ? {} : (options.env ?? process.env);
    const endpoint = options.endpoint ?? env.ZSTACK_ENDPOINT;
    if (!endpoint) throw new TypeError('ZStackClient: no endpoint (pass { endpoint } or set ZSTACK_ENDPOINT)');
    this.options = {
      ...options,
      endpoint,
      accountName: options.accountName ?? env.ZSTACK_ACCOUNT ?? env.ZSTACK_ACCOUNT_NAME,
      password: options.password ?? env.ZSTACK_PASSWORD,
      sessionUuid: options.sessionUuid ?? env.ZSTACK_SESSION,
    };
    this.endpoint = endpoint.replace(/\/+$/, '');
    this.http = axios.create({ proxy: false, maxRedirects: 0, ...options.axios, baseURL: this.endpoint, validateStatus: () => true });
    this.sessionUuid = this.options.sessionUuid;
  }

  private get canLogin(): boolean {
    return !!this.options.accountName && this.options.password !== undefined;
  }

  /** Logs in with the configured account (done automatically on first use and once when a session expires). */
  login(): Promise<string> {
    const { accountName, password } = this.options;
    if (!accountName || password === undefined) return Promise.reject(new TypeError('ZStackClient: no accountName/password to log in with'));
    // Concurrent calls share one login.
    this.loggingIn ??= this.call('LogInByAccount', { accountName, password: hashPassword(password) })
      .then((reply) => (this.sessionUuid = reply.inventory.uuid))
      .finally(() => (this.loggingIn = undefined));
    return this.loggingIn;
  }

  /** Ends the session on the server. */
  async logout(): Promise<void> {
    const session = this.sessionUuid;
    if (!session) return;
    try {
      await this.call('LogOut', { sessionUuid: session });
    } finally {
      if (this.sessionUuid === session) this.sessionUuid = undefined;
    }
  }

  /** Calls an API by name; asynchronous APIs are waited for. */
  async call<K extends OperationId>(apiName: K, paramsIn?: CallParams<K>, options: CallOptions = {}): Promise<ReplyOf<K>> {
    const params = (paramsIn ?? {}) as Record<string, unknown>;
    const op = this.operation(apiName);
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const deadline = timeoutMs !== undefined ? Date.now() + timeoutMs + GRACE_MS : undefined;
    if (op.kind === 'async') {
      // `Prefer: wait` (RFC 7240): the server answers with the job's result when it finishes within the wait, so most
      // calls take one exchange; a 202 is polled as usual. Not while reporting progress (that needs a poll per
      // interval, as the long poll below); never past the deadline.
      const waitSeconds = options.onProgress ? 0 : Math.floor(Math.min(LONG_POLL_MS, deadline !== undefined ? deadline - Date.now() : LONG_POLL_MS) / 1000);
      const started = await this.begin(apiName, params, options, deadline, waitSeconds);
      if ('reply' in started) return started.reply as ReplyOf<K>;
      const { handle } = started;
      const name = typeof params.name === 'string' ? params.name : undefined;
      return (await this.waitFor(handle, options, deadline ?? handle.startedAt + handle.apiTimeout + 5000, name)) as ReplyOf<K>;
    }
    const { res } = await this.send(apiName, params, options, deadline);
    if (res.status === 202) return (await this.waitFor(this.handleOf(apiName, res, undefined), options, deadline)) as ReplyOf<K>;
    return res.data as ReplyOf<K>;
  }

  /** Starts an asynchronous API and returns its job without waiting (resume with `waitJob`). */
  start<K extends OperationId>(apiName: K, paramsIn?: CallParams<K>, options: CallOptions = {}): Promise<JobHandle<K>> {
    const params = (paramsIn ?? {}) as Record<string, unknown>;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    return this.startAt(apiName, params, options, timeoutMs !== undefined ? Date.now() + timeoutMs + GRACE_MS : undefined);
  }

  /**
   * Waits for a job — a handle from `start*`, a job uuid or its location URL — until it succeeds (returns the API's
   * reply) or fails (throws its ZStackError). The poll needs no session, so any process can resume any job.
   * `timeoutMs` bounds this wait only (default: the API timeout the server reported, plus 5 s).
   */
  waitJob<K extends OperationId>(job: JobHandle<K>, options?: CallOptions): Promise<ReplyOf<K>>;
  waitJob(job: string | JobHandle, options?: CallOptions): Promise<unknown>;
  waitJob(job: string | JobHandle, options: CallOptions = {}): Promise<unknown> {
    const handle: JobHandle =
      typeof job === 'string'
        ? {
            apiName: '' as OperationId,
            jobUuid: job
              .replace(/[?#].*$/, '')
              .split('/')
              .pop()!,
            location: job,
            apiTimeout: 0,
            startedAt: Date.now(),
          }
        : job;
    const deadline =
      options.timeoutMs !== undefined ? Date.now() + options.timeoutMs : handle.apiTimeout ? handle.startedAt + handle.apiTimeout + 5000 : undefined;
    return this.waitFor(handle, options, deadline);
  }

  /** Every row of a Query API, fetched page by page with `start`/`limit` (stable order: the server breaks ties by uuid). */
  async *queryAll<K extends OperationId>(
    apiName: K,
    params: QueryParams<K> | Record<string, unknown> = {},
    options: QueryAllOptions = {},
  ): AsyncIterableIterator<InventoryOf<K>> {
    const op = this.operation(apiName);
    if (op.kind !== 'query') throw new TypeError(`${apiName} is not a Query API`);
    const { pageSize: size, ...callOptions } = options;
    const p = { ...(params as Record<string, unknown>) };
    if (p.count) throw new TypeError('queryAll: `count` makes no sense here; call the Query API with count: true');
    const pageSize = Math.min(1000, Math.max(1, size ?? (p.limit as number | undefined) ?? 500));
    let start = (p.start as number | undefined) ?? 0;
    delete p.replyWithCount;
    for (;;) {
      const reply = (await this.call(apiName, { ...p, start, limit: pageSize } as CallParams<K>, callOptions)) as { inventories?: InventoryOf<K>[] };
      const rows = reply.inventories ?? [];
      for (const row of rows) yield row;
      if (rows.length < pageSize) return;
      start += rows.length;
    }
  }

  /**
   * The call as a curl command line (debugging, bug reports). Redacted by default: the session is shown as `***`
   * and password fields too; `{ redact: false }` prints them.
   */
  toCurl<K extends OperationId>(apiName: K, paramsIn?: CallParams<K>, options: CallOptions & { redact?: boolean } = {}): string {
    const params = (paramsIn ?? {}) as Record<string, unknown>;
    const op = this.operation(apiName);
    const p = op.kind === 'query' ? normalizeQueryParams(params) : params;
    const req = buildRequest(apiName, op, p, {
      sessionUuid: this.sessionUuid ?? '<session-uuid>',
      timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
      jobUuid: options.jobUuid,
      systemTags: options.systemTags,
      userTags: options.userTags,
      headers: { ...this.options.headers, ...options.headers },
    });
    return curlOf(this.endpoint, options.redact === false ? req : this.redacted(req, requestSecrets(op, p)));
  }

  // ---- internals -------------------------------------------------------------------------------------------------

  private operation(apiName: string): OperationInfo {
    const op = (OPERATIONS as Record<string, OperationInfo>)[apiName];
    if (!op) throw new TypeError(`unknown API ${apiName}`);
    return op;
  }

  private async startAt<K extends OperationId>(
    apiName: K,
    params: Record<string, unknown>,
    options: CallOptions,
    deadline: number | undefined,
  ): Promise<JobHandle<K>> {
    const started = await this.begin(apiName, params, options, deadline, 0);
    if ('reply' in started) throw new TypeError('unreachable: a job started without Prefer: wait answered its result');
    return started.handle;
  }

  /**
   * Sends an asynchronous API with its job uuid; with `waitSeconds`, `Prefer: wait=<waitSeconds>` too. The answer is
   * the job to wait for (202), or — when the server applied the preference — the job's reply (200) or its error
   * (thrown, as a poll's would be).
   */
  private async begin<K extends OperationId>(
    apiName: K,
    params: Record<string, unknown>,
    options: CallOptions,
    deadline: number | undefined,
    waitSeconds: number,
  ): Promise<{ handle: JobHandle<K> } | { reply: unknown }> {
    const op = this.operation(apiName);
    if (op.kind !== 'async') throw new TypeError(`${apiName} is not an asynchronous API`);
    const jobUuid = options.jobUuid ?? newJobUuid();
    let p = params;
    // To report a download's progress the SDK must know the new resource's uuid, so it picks it.
    if (op.progressQuery && options.onProgress && params.resourceUuid === undefined) p = { ...params, resourceUuid: newJobUuid() };
    const { res, req } = await this.send(apiName, p, { ...options, jobUuid }, deadline, waitSeconds);
    if (res.status !== 202 && waitSeconds > 0 && finalAnswer(res)) {
      if (res.status === 200) return { reply: res.data };
      throw this.errorOf(res, apiName, jobUuid, req);
    }
    if (res.status !== 202) {
      throw new ZStackError(
        { ...SDK_ERRORS.badReply, details: `${apiName} answered HTTP ${res.status} instead of 202 with a job` },
        res.status,
        apiName,
        jobUuid,
      );
    }
    return { handle: this.handleOf(apiName, res, typeof p.resourceUuid === 'string' ? p.resourceUuid : undefined) };
  }

  private handleOf<K extends OperationId>(apiName: K, res: AxiosResponse, resourceUuid: string | undefined): JobHandle<K> {
    const { location, apiTimeout } = res.data as { location: string; apiTimeout: number };
    const handle: JobHandle<K> = { apiName, jobUuid: location.split('/').pop()!, location, apiTimeout, startedAt: Date.now() };
    if (resourceUuid) handle.resourceUuid = resourceUuid;
    return handle;
  }

  /** `resourceName`: a second way to find the resource being created, for servers that ignore `resourceUuid`. */
  private async waitFor(handle: JobHandle, options: CallOptions, deadline: number | undefined, resourceName?: string): Promise<unknown> {
    const fixed = options.pollIntervalMs;
    let interval = fixed ?? this.options.pollIntervalMs ?? 100;
    const maxInterval = Math.max(interval, this.options.maxPollIntervalMs ?? 2000);
    const apiName = handle.apiName || undefined;
    const progressQuery =
      apiName && handle.resourceUuid && options.onProgress ? (OPERATIONS as Record<string, OperationInfo>)[apiName]?.progressQuery : undefined;
    const req: HttpRequest = { method: 'GET', url: `/zstack/v1/api-jobs/${encodeURIComponent(handle.jobUuid)}`, headers: { ...this.options.headers } };
    for (let polls = 1; ; polls++) {
      // Long poll (X-Job-Wait-Ms): the server holds the answer until the job ends (or the wait is over), so one
      // poll usually sees the end. Not while reporting progress (it needs a poll per interval); never past the
      // deadline. A server that answers at once (one that does not know the header, or a job on another node)
      // is polled at the usual growing interval.
      const waitMs = options.onProgress ? 0 : Math.floor(deadline !== undefined ? Math.min(LONG_POLL_MS, deadline - Date.now()) : LONG_POLL_MS);
      if (waitMs > 0) req.headers['X-Job-Wait-Ms'] = String(waitMs);
      else delete req.headers['X-Job-Wait-Ms'];
      const sent = Date.now();
      const res = await this.exchange(req, {
        apiName,
        jobUuid: handle.jobUuid,
        idempotent: true,
        retry: options.retry ?? this.options.retry ?? DEFAULT_RETRY,
        signal: options.signal,
        deadline,
        requestTimeoutMs: 60_000,
      });
      if (res.status === 200) return res.data;
      if (res.status !== 202) throw this.errorOf(res, apiName, handle.jobUuid, req);
      if (options.onProgress) {
        const reported = (res.data as { progress?: Omit<JobProgress, 'apiName' | 'jobUuid' | 'elapsedMs' | 'polls'> } | undefined)?.progress;
        const progress: JobProgress = { apiName: handle.apiName, jobUuid: handle.jobUuid, elapsedMs: Date.now() - handle.startedAt, polls, ...reported };
        if (progressQuery) {
          const look = (q: Record<string, unknown>) =>
            this.call(progressQuery as OperationId, q as never, { signal: options.signal, retry: false })
              .then((r) => (r as { inventories?: Array<{ progress?: string }> }).inventories?.[0])
              .catch(() => undefined);
          // By the uuid the SDK chose; else the newest resource of that name.
          const resource =
            (await look({ q: [`uuid=${handle.resourceUuid}`] })) ??
            (resourceName !== undefined ? await look({ q: [`name=${resourceName}`], sort: '-createDate', limit: 1 }) : undefined);
          if (resource) {
            progress.resource = resource;
            if (resource.progress !== undefined) progress.progress = resource.progress;
          }
        }
        try {
          options.onProgress(progress);
        } catch {
          // a progress callback never breaks the wait
        }
      }
      const now = Date.now();
      if (deadline !== undefined && now >= deadline) throw this.waitTimeout(handle, now);
      if (waitMs > 0 && now - sent >= waitMs * 0.9) continue; // the server held the poll: ask again at once
      await sleep(deadline !== undefined ? Math.min(interval, deadline - now) : interval, options.signal);
      if (fixed === undefined) interval = Math.min(interval * 1.5, maxInterval);
    }
  }

  private waitTimeout(handle: JobHandle, now: number): ZStackError {
    return new ZStackError(
      {
        ...SDK_ERRORS.timeout,
        details: `gave up waiting for job ${handle.jobUuid}${handle.apiName ? ` of ${handle.apiName}` : ''} after ${now - handle.startedAt} ms; the job may still be running on the server: resume with waitJob('${handle.jobUuid}')`,
      },
      0,
      handle.apiName || undefined,
      handle.jobUuid,
    );
  }

  private async send(
    apiName: OperationId,
    params: Record<string, unknown>,
    options: CallOptions,
    deadline: number | undefined,
    waitSeconds?: number,
  ): Promise<{ res: AxiosResponse; req: HttpRequest }> {
    const op = this.operation(apiName);
    if (this.options.readOnly && op.method !== 'GET' && !READ_ONLY_ALLOWED.has(apiName)) {
      throw new ZStackError({ ...SDK_ERRORS.readOnly, details: `${apiName} (${op.method} ${op.path}) is refused: the client is read-only` }, 0, apiName);
    }
    const prepared = op.kind === 'query' ? normalizeQueryParams(params) : params;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    // One id per call (its retries and a re-login's re-send share it): the server logs it, errors carry it.
    const requestId = newJobUuid();
    for (let relogged = false; ; relogged = true) {
      const session = op.public ? undefined : (this.sessionUuid ?? (this.canLogin ? await this.login() : undefined));
      const req = buildRequest(apiName, op, prepared, {
        sessionUuid: session,
        timeoutMs,
        jobUuid: options.jobUuid,
        waitSeconds,
        systemTags: options.systemTags,
        userTags: options.userTags,
        headers: { 'X-Request-Id': requestId, ...this.options.headers, ...options.headers },
      });
      const res = await this.exchange(req, {
        apiName,
        jobUuid: options.jobUuid,
        idempotent: req.method === 'GET' || !!req.headers['X-Job-UUID'],
        retry: options.retry ?? this.options.retry ?? DEFAULT_RETRY,
        signal: options.signal,
        deadline,
        requestTimeoutMs: timeoutMsOf(op.timeout) + 10_000,
        secrets: op.secrets?.reply.length ? (r) => secretValues(r.data, op.secrets!.reply) : undefined,
        hide: requestSecrets(op, prepared),
      });
      // A job's outcome answered to `Prefer: wait` (its failure too) is the caller's to read.
      if (res.status === 200 || res.status === 202 || finalAnswer(res)) return { res, req };
      // Refused before a job existed: the error names no job.
      const error = this.errorOf(res, apiName, undefined, req);
      // An expired session: log in again, once (concurrent calls share the login), and send the request again.
      if (error.code === 'ID.1001' && !op.public && !relogged && this.canLogin) {
        if (this.sessionUuid === session) this.sessionUuid = undefined;
        continue;
      }
      throw error;
    }
  }

  /** One request with the retries that are safe; returns any HTTP reply, throws on transport failure/abort/deadline. */
  private async exchange(req: HttpRequest, ctx: ExchangeContext): Promise<AxiosResponse> {
    const id = this.nextId++;
    const policy = ctx.retry === false ? { ...DEFAULT_RETRY, retries: 0 } : { ...DEFAULT_RETRY, ...ctx.retry };
    const hooks = this.options.hooks;
    for (let attempt = 1; ; attempt++) {
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      const remaining = ctx.deadline !== undefined ? ctx.deadline - Date.now() : undefined;
      if (remaining !== undefined && remaining <= 0) throw this.deadlineError(ctx, req);
      const base = hooks ? this.event(id, ctx, attempt, req) : undefined;
      if (base) this.hook(() => hooks!.onRequest?.(base));
      const t0 = Date.now();
      let res: AxiosResponse | undefined;
      let failure: unknown;
      try {
        res = await this.http.request({
          method: req.method,
          url: req.url,
          headers: req.headers,
          data: req.body,
          signal: ctx.signal,
          timeout: Math.max(1, Math.min(remaining ?? Infinity, ctx.requestTimeoutMs)),
        });
      } catch (e) {
        if (ctx.signal?.aborted) throw ctx.signal.reason;
        failure = e;
      }
      const durationMs = Date.now() - t0;
      // Decide: final reply, or a failure that may be retried.
      let retryable = false;
      if (res) {
        const transient = res.status >= 500 && !isZStackReply(res.data);
        if (!transient) {
          if (base) {
            const secrets = [...(ctx.secrets?.(res) ?? []), ...(ctx.hide ?? []), ...this.secretList()];
            this.hook(() => hooks!.onResponse?.({ ...base, status: res!.status, durationMs, responseBody: redactValue(res!.data, secrets) }));
          }
          if (res.status === 200 && this.options.dates === 'iso') res.data = isoDates(res.data);
          return res;
        }
        // A 5xx that is not a ZStack reply comes from something in between (proxy, load balancer, restart).
        retryable = ctx.idempotent;
      } else {
        if (ctx.deadline !== undefined && Date.now() >= ctx.deadline) throw this.deadlineError(ctx, req);
        const code = transportCode(failure);
        retryable = (code !== undefined && NOT_SENT.has(code)) || ctx.idempotent;
      }
      const retryAfter = Number(res?.headers?.['retry-after']);
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      let delayMs = Math.round(backoff / 2 + (Math.random() * backoff) / 2);
      if (Number.isFinite(retryAfter) && retryAfter > 0) delayMs = Math.min(policy.maxDelayMs, retryAfter * 1000);
      const willRetry = retryable && attempt <= policy.retries && (ctx.deadline === undefined || Date.now() + delayMs < ctx.deadline);
      if (base)
        this.hook(() =>
          hooks!.onError?.({
            ...base,
            error: failure ?? new Error(`HTTP ${res!.status}`),
            status: res?.status,
            durationMs,
            willRetry,
            delayMs: willRetry ? delayMs : undefined,
          }),
        );
      if (!willRetry) {
        if (res) return res;
        const code = transportCode(failure);
        throw new ZStackError(
          {
            ...SDK_ERRORS.connection,
            details:
              `${req.method} ${this.endpoint}${redactUrl(req.url, this.secretList())} failed after ${attempt} attempt${attempt > 1 ? 's' : ''}: ${code ?? ''} ${(failure as Error)?.message ?? failure}`.replace(
                /\s+/g,
                ' ',
              ),
          },
          0,
          ctx.apiName,
          ctx.jobUuid,
          {
            cause: failure,
            request: { method: req.method, url: this.endpoint + redactUrl(req.url, this.secretList()) },
            requestId: req.headers['X-Request-Id'],
          },
        );
      }
      await sleep(delayMs, ctx.signal);
    }
  }

  private deadlineError(ctx: ExchangeContext, req: HttpRequest): ZStackError {
    return new ZStackError(
      {
        ...SDK_ERRORS.timeout,
        details: `${ctx.apiName ?? req.method + ' ' + req.url} timed out on the client${ctx.jobUuid ? `; the job ${ctx.jobUuid} may still be running on the server: resume with waitJob('${ctx.jobUuid}')` : ''}`,
      },
      0,
      ctx.apiName,
      ctx.jobUuid,
    );
  }

  private secretList(): string[] {
    return this.sessionUuid ? [this.sessionUuid] : [];
  }

  private redacted(req: HttpRequest, extra: string[]): HttpRequest {
    const secrets = [...this.secretList(), ...extra];
    return { method: req.method, url: redactUrl(req.url, secrets), headers: redactHeaders(req.headers), body: redactValue(req.body, secrets) };
  }

  private event(id: number, ctx: ExchangeContext, attempt: number, req: HttpRequest): RequestEvent {
    const r = this.redacted(req, ctx.hide ?? []);
    return {
      id,
      apiName: ctx.apiName,
      jobUuid: ctx.jobUuid,
      attempt,
      method: r.method,
      url: this.endpoint + r.url,
      headers: r.headers,
      body: r.body,
      curl: curlOf(this.endpoint, r),
    };
  }

  private hook(fn: () => void): void {
    try {
      fn();
    } catch {
      // hooks are for observing; they never break a call
    }
  }

  private errorOf(res: AxiosResponse, apiName: string | undefined, jobUuid: string | undefined, req: HttpRequest): ZStackError {
    const request = { method: req.method, url: this.endpoint + redactUrl(req.url, this.secretList()) };
    const echoed = res.headers?.['x-request-id'];
    const requestId = typeof echoed === 'string' ? echoed : req.headers['X-Request-Id'];
    if (isZStackReply(res.data)) return new ZStackError(res.data.error, res.status, apiName, jobUuid, { request, requestId });
    const text = typeof res.data === 'string' ? res.data : JSON.stringify(res.data);
    return new ZStackError({ ...SDK_ERRORS.badReply, details: `HTTP ${res.status}: ${String(text).slice(0, 500)}` }, res.status, apiName, jobUuid, {
      request,
      requestId,
    });
  }
}

// One method per operation, named from its operationId (createZone, queryL3Network, …), plus `start<Op>` for
// asynchronous APIs and `queryAll<Inventory>` for Query APIs.
for (const [apiName, op] of Object.entries(OPERATIONS as Record<string, OperationInfo>)) {
  const define = (name: string, value: (this: ZStackClient, ...args: any[]) => unknown) =>
    Object.defineProperty(ZStackClient.prototype, name, { value, configurable: true, writable: true });
  define(apiName[0].toLowerCase() + apiName.slice(1), function (params?: Record<string, unknown>, options?: CallOptions) {
    return this.call(apiName as OperationId, params as never, options);
  });
  if (op.kind === 'async') {
    define(`start${apiName}`, function (params?: Record<string, unknown>, options?: CallOptions) {
      return this.start(apiName as OperationId, params as never, options);
    });
  }
  if (op.kind === 'query') {
    define(`queryAll${apiName.replace(/^Query/, '')}`, function (params?: Record<string, unknown>, options?: QueryAllOptions) {
      return this.queryAll(apiName as OperationId, params ?? {}, options);
    });
  }
}

/** The string values at dotted paths (`*` = any array item or map value) of a JSON value. */
export function secretValues(value: unknown, paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (v: unknown, parts: string[]) => {
    if (!parts.length) {
      if (typeof v === 'string' && v) out.push(v);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const [head, ...rest] = parts;
    if (head === '*') for (const item of Object.values(v)) walk(item, rest);
    else if (Object.prototype.hasOwnProperty.call(v, head)) walk((v as Record<string, unknown>)[head], rest);
  };
  for (const p of paths) walk(value, p.split('.'));
  return out;
}

/** The secret values a call's parameters carry (the spec's secret body fields and parameters). */
function requestSecrets(op: OperationInfo, params: Record<string, unknown>): string[] {
  if (!op.secrets) return [];
  const prefix = op.bodyKey ? `${op.bodyKey}.` : '';
  const inBody = op.secrets.request.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length));
  return secretValues(params, [...inBody, ...op.secrets.params]);
}
