// The ZStack-TS client: one typed method per API (generated from the spec), session handling, job waiting.
import { createHash } from 'node:crypto';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { OPERATIONS, type GeneratedMethods, type OperationId } from './generated/operations.js';
import { ZStackError, type ErrorCodeJson } from './errors.js';
import type { CallOptions, OperationInfo, ReplyOf } from './types.js';

export interface ClientOptions {
  /** e.g. `http://localhost:8080` */
  endpoint: string;
  accountName?: string;
  /** Clear password; hashed with SHA-512 before it is sent, as upstream clients do. */
  password?: string;
  sessionUuid?: string;
  /** Default API timeout for every call (ms); the server's per-API default otherwise. */
  timeoutMs?: number;
  pollIntervalMs?: number;
}

export interface JobHandle {
  jobUuid: string;
  location: string;
  /** Effective API timeout (ms) the server reported. */
  apiTimeout: number;
  apiName: string;
}

const sha512 = (s: string) => createHash('sha512').update(s).digest('hex');
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

export interface ZStackClient extends GeneratedMethods {}

export class ZStackClient {
  readonly http: AxiosInstance;
  sessionUuid?: string;

  constructor(readonly options: ClientOptions) {
    this.http = axios.create({ baseURL: options.endpoint.replace(/\/$/, ''), validateStatus: () => true, proxy: false });
    this.sessionUuid = options.sessionUuid;
  }

  /** Logs in with the configured account (done automatically on first use). */
  async login(): Promise<string> {
    const { accountName, password } = this.options;
    if (!accountName || password === undefined) throw new Error('ZStackClient: no accountName/password to log in with');
    const reply = await this.call('LogInByAccount', { accountName, password: sha512(password) });
    this.sessionUuid = reply.inventory.uuid;
    return this.sessionUuid;
  }

  async logout(): Promise<void> {
    if (!this.sessionUuid) return;
    await this.call('LogOut', { sessionUuid: this.sessionUuid });
    this.sessionUuid = undefined;
  }

  /** Calls an API by name; asynchronous APIs are waited for. */
  async call<K extends OperationId>(apiName: K, params: Record<string, unknown> = {}, options: CallOptions = {}): Promise<ReplyOf<K>> {
    const res = await this.send(apiName, params, options);
    if (res.status === 202) {
      const handle = this.handleOf(apiName, res);
      return (await this.waitJob(handle, options)) as ReplyOf<K>;
    }
    return res.data as ReplyOf<K>;
  }

  /** Starts an asynchronous API and returns its job without waiting (resume with `waitJob`). */
  async start<K extends OperationId>(apiName: K, params: Record<string, unknown> = {}, options: CallOptions = {}): Promise<JobHandle> {
    const res = await this.send(apiName, params, options);
    if (res.status !== 202) throw new Error(`${apiName} is not an asynchronous API`);
    return this.handleOf(apiName, res);
  }

  /** Waits for a job (by handle, uuid or location) until it succeeds (returns its reply) or fails (throws). */
  async waitJob(job: JobHandle | string, options: CallOptions = {}): Promise<unknown> {
    const handle = typeof job === 'string' ? { jobUuid: job.split('/').pop()!, location: job, apiTimeout: 0, apiName: '' } : job;
    const path = `/zstack/v1/api-jobs/${handle.jobUuid}`;
    const limit = options.timeoutMs ?? (handle.apiTimeout ? handle.apiTimeout + 5000 : undefined);
    const until = limit ? Date.now() + limit : Infinity;
    let interval = options.pollIntervalMs ?? this.options.pollIntervalMs ?? 50;
    for (;;) {
      const res = await this.http.get(path, { signal: options.signal });
      if (res.status === 200) return res.data;
      if (res.status !== 202) throw this.errorOf(res, handle.apiName, handle.jobUuid);
      if (Date.now() >= until) {
        throw new ZStackError({ code: 'SYS.1001', description: 'A message or an operation timeout', details: `gave up waiting for job ${handle.jobUuid} after ${limit} ms` }, 0, handle.apiName, handle.jobUuid);
      }
      await sleep(Math.min(interval, Math.max(0, until - Date.now())), options.signal);
      interval = Math.min(interval * 1.5, options.pollIntervalMs ?? 2000);
    }
  }

  private handleOf(apiName: string, res: AxiosResponse): JobHandle {
    const { location, apiTimeout } = res.data as { location: string; apiTimeout: number };
    return { apiName, location, apiTimeout, jobUuid: location.split('/').pop()! };
  }

  private async send(apiName: OperationId, params: Record<string, unknown>, options: CallOptions, relogged = false): Promise<AxiosResponse> {
    const op: OperationInfo = OPERATIONS[apiName];
    if (!op) throw new Error(`unknown API ${apiName}`);
    if (!op.public && !this.sessionUuid) await this.login();
    const rest: Record<string, unknown> = { ...params };
    const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const v = rest[name];
      delete rest[name];
      if (v === undefined || v === null) throw new Error(`${apiName}: missing path parameter ${name}`);
      return encodeURIComponent(String(v));
    });
    const query = new URLSearchParams();
    for (const name of op.queryParams) {
      const v = rest[name];
      delete rest[name];
      appendQuery(query, name, v);
    }
    const headers: Record<string, string> = {};
    if (!op.public) headers.Authorization = `OAuth ${this.sessionUuid}`;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    if (timeoutMs !== undefined) headers['X-API-Timeout'] = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    if (options.jobUuid) headers['X-Job-UUID'] = options.jobUuid;
    let data: unknown;
    if (op.bodyKey) {
      if (options.systemTags) rest.systemTags = options.systemTags;
      if (options.userTags) rest.userTags = options.userTags;
      data = { [op.bodyKey]: rest };
    }
    const qs = query.toString();
    const res = await this.http.request({ method: op.method, url: qs ? `${path}?${qs}` : path, data, headers, signal: options.signal });
    if (res.status === 200 || res.status === 202) return res;
    const error = this.errorOf(res, apiName);
    if (error.code === 'ID.1001' && !op.public && !relogged && this.options.accountName) {
      await this.login();
      return this.send(apiName, params, options, true);
    }
    throw error;
  }

  private errorOf(res: AxiosResponse, apiName?: string, jobUuid?: string): ZStackError {
    const body = res.data as { error?: ErrorCodeJson } | undefined;
    const error = body?.error ?? { code: 'SYS.1015', description: 'An HTTP call failed', details: `HTTP ${res.status}: ${typeof res.data === 'string' ? res.data : JSON.stringify(res.data)}` };
    return new ZStackError(error, res.status, apiName, jobUuid);
  }
}

function appendQuery(query: URLSearchParams, name: string, v: unknown): void {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) for (const item of v) query.append(name, String(item));
  else if (typeof v === 'object') {
    for (const [k, inner] of Object.entries(v as Record<string, unknown>)) appendQuery(query, `${name}.${k}`, inner);
  } else query.append(name, String(v));
}

// One method per operation, named from its operationId (createZone, queryL3Network, …).
for (const apiName of Object.keys(OPERATIONS) as OperationId[]) {
  const method = apiName[0].toLowerCase() + apiName.slice(1);
  Object.defineProperty(ZStackClient.prototype, method, {
    value(this: ZStackClient, params?: Record<string, unknown>, options?: CallOptions) {
      return this.call(apiName, params ?? {}, options);
    },
  });
}
