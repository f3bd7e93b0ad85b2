// One API call as an HTTP request (pure: used to send, to log and to print as curl), and secret redaction.
import type { OperationInfo } from './types.js';

export interface HttpRequest {
  method: string;
  /** Path and query string, e.g. `/zstack/v1/zones?q=name%3Dx`. */
  url: string;
  headers: Record<string, string>;
  body?: unknown;
}

export interface BuildOptions {
  sessionUuid?: string;
  timeoutMs?: number;
  jobUuid?: string;
  /** Asynchronous APIs: sent as `Prefer: wait=<seconds>` (the server answers the job's outcome if it ends in time). */
  waitSeconds?: number;
  systemTags?: string[];
  userTags?: string[];
  headers?: Record<string, string>;
}

function appendQuery(query: URLSearchParams, name: string, v: unknown): void {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) for (const item of v) appendQuery(query, name, item);
  else if (typeof v === 'object') {
    // Maps travel as upstream sends them: `networkServices.<key>=<value>` (repeated for lists).
    for (const [k, inner] of Object.entries(v as Record<string, unknown>)) appendQuery(query, `${name}.${k}`, inner);
  } else query.append(name, String(v));
}

export function buildRequest(apiName: string, op: OperationInfo, params: Record<string, unknown>, o: BuildOptions = {}): HttpRequest {
  const rest: Record<string, unknown> = { ...params };
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = rest[name];
    delete rest[name];
    if (v === undefined || v === null || v === '') throw new TypeError(`${apiName}: missing path parameter ${name}`);
    return encodeURIComponent(String(v));
  });
  const query = new URLSearchParams();
  for (const name of op.queryParams) {
    const v = rest[name];
    delete rest[name];
    appendQuery(query, name, v);
  }
  const headers: Record<string, string> = { ...o.headers };
  if (!op.public && o.sessionUuid) headers.Authorization = `OAuth ${o.sessionUuid}`;
  // Refusals answered at once with their own status (400/401/403/404/409) instead of upstream's failed job or 503.
  headers['X-ZStack-Errors'] ??= 'direct';
  if (o.timeoutMs !== undefined) headers['X-API-Timeout'] = String(Math.max(1, Math.ceil(o.timeoutMs / 1000)));
  if (o.jobUuid) headers['X-Job-UUID'] = o.jobUuid;
  if (o.waitSeconds) headers.Prefer = `wait=${o.waitSeconds}`;
  let body: unknown;
  if (op.bodyKey) {
    if (o.systemTags) rest.systemTags = o.systemTags;
    if (o.userTags) rest.userTags = o.userTags;
    body = { [op.bodyKey]: rest };
    headers['Content-Type'] = 'application/json';
  }
  const qs = query.toString();
  return { method: op.method, url: qs ? `${path}?${qs}` : path, headers, body };
}

// ---- redaction -------------------------------------------------------------------------------------------------

export const REDACTED = '***';
const SECRET_KEY = /pass(word)?$|password|secret|token|privatekey|accesskey/i;

/** Headers with the credential values hidden (the scheme of `Authorization` is kept). */
export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (key === 'authorization') out[k] = v.includes(' ') ? `${v.split(' ')[0]} ${REDACTED}` : REDACTED;
    else if (key === 'x-session-id' || key === 'cookie') out[k] = REDACTED;
    else out[k] = v;
  }
  return out;
}

/** A copy of a JSON value with password-like fields and the given secret strings (session uuids) hidden. */
export function redactValue(value: unknown, secrets: readonly string[] = []): unknown {
  if (typeof value === 'string') return secrets.includes(value) ? REDACTED : value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null ? REDACTED : redactValue(v, secrets);
    return out;
  }
  return value;
}

/** A URL with secret strings (a session uuid in `/accounts/sessions/<uuid>`) and password-like query fields hidden. */
export function redactUrl(url: string, secrets: readonly string[] = []): string {
  let out = url;
  for (const s of secrets) if (s) out = out.split(s).join(REDACTED);
  const q = out.indexOf('?');
  if (q < 0) return out;
  const params = new URLSearchParams(out.slice(q + 1));
  let changed = false;
  for (const key of [...new Set(params.keys())]) {
    if (SECRET_KEY.test(key)) {
      params.set(key, REDACTED);
      changed = true;
    }
  }
  return changed ? `${out.slice(0, q)}?${params.toString()}` : out;
}

// ---- curl ------------------------------------------------------------------------------------------------------

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The request as a curl command line. */
export function curlOf(endpoint: string, req: HttpRequest): string {
  const parts = ['curl', '-X', req.method, shellQuote(endpoint + req.url)];
  // The call's own request id is left out: a replayed request is another call.
  for (const [k, v] of Object.entries(req.headers)) if (k !== 'X-Request-Id') parts.push('-H', shellQuote(`${k}: ${v}`));
  if (req.body !== undefined) parts.push('-d', shellQuote(JSON.stringify(req.body)));
  return parts.join(' ');
}
