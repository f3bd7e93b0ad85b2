// Credentials and the SDK client of the provider runtime. Credentials come from the stack config the engine hands to the
// dynamic provider (`zstack:endpoint`, `zstack:accountName`, secret `zstack:password`, …) or from the environment
// (ZSTACK_ENDPOINT, ZSTACK_ACCOUNT_NAME, ZSTACK_PASSWORD, …), read at run time inside the plugin: they never reach the
// serialized provider nor the state.
import { randomBytes } from 'node:crypto';
import { ZStackClient, ZStackError, type CallOptions } from '@zstack-ts/sdk';

export interface ConfigLike {
  get(key: string): string | undefined;
}

export interface Settings {
  endpoint?: string;
  accountName?: string;
  password?: string;
  /** API timeout (ms) for every call: sent as X-API-Timeout and bounds the SDK's wait for the job. */
  timeoutMs?: number;
  pollIntervalMs?: number;
}

/** Settings from the stack config, per provider object (the plugin calls `configure` once per provider). */
const configured = new WeakMap<object, Settings>();
/** One client (one session) per distinct set of credentials in this process, shared by the providers. */
const clients = new Map<string, ZStackClient>();

const num = (v: string | undefined) => (v === undefined || v === '' || Number.isNaN(Number(v)) ? undefined : Number(v));

export function configure(provider: object, config: ConfigLike): void {
  configured.set(provider, {
    endpoint: config.get('zstack:endpoint') || undefined,
    accountName: config.get('zstack:accountName') || undefined,
    password: config.get('zstack:password') ?? undefined,
    timeoutMs: num(config.get('zstack:timeoutMs')),
    pollIntervalMs: num(config.get('zstack:pollIntervalMs')),
  });
}

/** Stack config first, then the environment (read now, not when the program was serialized). */
export function settingsFor(provider?: object, extra: Settings = {}): Settings {
  const c = (provider && configured.get(provider)) ?? {};
  const env = process.env;
  return {
    endpoint: extra.endpoint ?? c.endpoint ?? (env.ZSTACK_ENDPOINT || undefined),
    accountName: extra.accountName ?? c.accountName ?? (env.ZSTACK_ACCOUNT || env.ZSTACK_ACCOUNT_NAME || undefined) ?? 'admin',
    password: extra.password ?? c.password ?? env.ZSTACK_PASSWORD,
    timeoutMs: extra.timeoutMs ?? c.timeoutMs ?? num(env.ZSTACK_TIMEOUT_MS),
    pollIntervalMs: extra.pollIntervalMs ?? c.pollIntervalMs ?? num(env.ZSTACK_POLL_INTERVAL_MS),
  };
}

export function clientFor(provider?: object, extra?: Settings): ZStackClient {
  const s = settingsFor(provider, extra);
  if (!s.endpoint) {
    throw new Error('ZStack endpoint is not configured: run `pulumi config set zstack:endpoint http://<host>:8080` or set ZSTACK_ENDPOINT');
  }
  if (s.password === undefined) {
    throw new Error('ZStack password is not configured: run `pulumi config set --secret zstack:password <password>` or set ZSTACK_PASSWORD');
  }
  const key = JSON.stringify(s);
  const cached = clients.get(key);
  if (cached) return cached;
  const client = new ZStackClient({
    endpoint: s.endpoint,
    accountName: s.accountName,
    password: s.password,
    timeoutMs: s.timeoutMs,
    pollIntervalMs: s.pollIntervalMs,
    env: false, // settingsFor has read the environment already
  });
  clients.set(key, client);
  return client;
}

/** One login per client even when the engine sends operations in parallel. */
export async function loggedIn(client: ZStackClient): Promise<ZStackClient> {
  let state = loginState.get(client);
  if (!state) {
    state = client.sessionUuid ? Promise.resolve() : client.login();
    loginState.set(client, state);
  }
  try {
    await state;
  } catch (e) {
    loginState.delete(client);
    throw explain(e, `logging in to ${client.options.endpoint} as ${client.options.accountName}`);
  }
  return client;
}
const loginState = new WeakMap<ZStackClient, Promise<unknown>>();

/** A fresh 32-hex id: for `resourceUuid` (so a retried create names the same object) and `X-Job-UUID`. */
export const newUuid = () => randomBytes(16).toString('hex');

/** An error that names what was being done and the server's root cause. */
export function explain(e: unknown, what: string): Error {
  if (e instanceof ZStackError) {
    const root = e.rootCause;
    const cause = root !== e.errorCode ? ` (cause: ${root.code} ${root.details ?? root.description})` : '';
    const err = new Error(`${what}: ${e.message}${cause}`);
    Object.assign(err, { code: e.code, httpStatus: e.httpStatus });
    return err;
  }
  const err = new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  if (e && typeof e === 'object' && 'code' in e) Object.assign(err, { code: (e as { code: unknown }).code });
  return err;
}

export const isNotFound = (e: unknown) => e instanceof ZStackError && (e.code === 'SYS.1003' || e.httpStatus === 404);

const TRANSIENT_NET = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ERR_NETWORK', 'ECONNABORTED']);

/**
 * 409 conflicts (the object is busy in another operation) are worth retrying here. Connection failures and proxy
 * errors the SDK has retried already (as `SDK.1000` they are final); validation, quota, timeouts and failed operations
 * are final too. Raw socket errors count for SDK versions that pass them through.
 */
export function isTransient(e: unknown): boolean {
  if (e instanceof ZStackError) return e.httpStatus === 409;
  const code = e && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : '';
  return TRANSIENT_NET.has(code);
}

export interface RetryOptions {
  attempts?: number;
  baseMs?: number;
  retryIf?: (e: unknown) => boolean;
}

/** Runs `fn` again on transient errors, with exponential backoff and jitter; the last error is rethrown. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const retryIf = opts.retryIf ?? isTransient;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || !retryIf(e)) throw e;
      const delay = (opts.baseMs ?? 200) * 2 ** (attempt - 1);
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
    }
  }
}

/** A mutating call made safe to retry: one job uuid for every attempt, so the server runs it at most once. */
export function once(options: CallOptions = {}): CallOptions {
  return { ...options, jobUuid: options.jobUuid ?? newUuid() };
}
