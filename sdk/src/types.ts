// Types of the SDK, derived from the generated API types (never written by hand per operation).
import type { Inventory, OperationId, ParamsOf, ReplyOf } from '@zstack-ts/openapi/helpers';

export type { ParamsOf, ReplyOf, OperationId as ApiName } from '@zstack-ts/openapi/helpers';

/** How to call one API (generated from the spec into `OPERATIONS`). */
export interface OperationInfo {
  summary?: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  path: string;
  kind: 'async' | 'sync' | 'query' | 'poll';
  bodyKey: string | null;
  /** The API's default timeout, e.g. `30m`. */
  timeout: string;
  public: boolean;
  pathParams: readonly string[];
  queryParams: readonly string[];
  /** The inventory schema the API returns (`inventories` for queries, `inventory` otherwise). */
  inventory?: string;
  /** A create API (accepts `resourceUuid`). */
  create?: boolean;
  /** The Query API that reports the created resource's `progress` while the job runs (AddImage → QueryImage). */
  progressQuery?: string;
  /**
   * Where the API's secrets are, from the spec's `x-zstack-secret` marks: dotted paths into the body and the reply
   * (`*` = any item), names of secret parameters. Their values are hidden from hooks, errors and `toCurl`.
   */
  secrets?: { request: readonly string[]; params: readonly string[]; reply: readonly string[] };
}

/** One parameter of an API (generated into `PARAMS`; the CLI converts `key=value` with it). */
export interface ParamInfo {
  name: string;
  in: 'path' | 'query' | 'body';
  type: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object';
  /** Element type of an array parameter. */
  items?: string;
  required?: boolean;
  enum?: readonly (string | number | boolean)[];
  description?: string;
}

/** A job started and not waited for: plain JSON, so it can be stored and resumed by another process. */
export interface JobHandle<K extends OperationId = OperationId> {
  apiName: K;
  jobUuid: string;
  /** The poll URL the server answered (`…/zstack/v1/api-jobs/<uuid>`). */
  location: string;
  /** The effective API timeout (ms) the server reported. */
  apiTimeout: number;
  /** When the job was accepted (ms since the epoch). */
  startedAt: number;
  /** The uuid of the resource a create API is making, when the SDK chose it (progress reporting). */
  resourceUuid?: string;
}

/**
 * What `onProgress` is told after each poll of a running job: the job's own report as the spec's `JobProgress` (the
 * step of the API's flow running now, `<flow>/<step>`, the steps before it and their number, a transfer's percent; when
 * the job runs on the node polled), and what the SDK adds.
 */
export interface JobProgress extends Inventory<'JobProgress'> {
  apiName: string;
  jobUuid: string;
  /** Milliseconds since the job was accepted. */
  elapsedMs: number;
  /** Polls so far. */
  polls: number;
  /** The resource's progress as the server reports it (AddImage: the download, e.g. `45%`). */
  progress?: string;
  /** The resource being created, as last queried (only for APIs with a progress query). */
  resource?: unknown;
}

export interface RetryOptions {
  /** Extra attempts after the first (default 4). */
  retries?: number;
  /** First backoff delay in ms (default 200); doubled each attempt, with jitter. */
  baseDelayMs?: number;
  /** Largest delay in ms (default 5000). */
  maxDelayMs?: number;
}

export interface CallOptions {
  /**
   * API timeout in ms: sent as `X-API-Timeout` (whole seconds, rounded up) so the server bounds the API and all its
   * internal steps, and bounds the client's wait for the job (plus a second of grace).
   */
  timeoutMs?: number;
  /** Fixed poll interval for this call's job (default: the client's, growing ×1.5 up to `maxPollIntervalMs`). */
  pollIntervalMs?: number;
  /** Aborts the request and the wait for the job (the job itself keeps running on the server). */
  signal?: AbortSignal;
  /**
   * Job uuid (32 hex chars) sent as `X-Job-UUID`. The SDK generates one for every asynchronous call, which makes
   * re-sending the request safe: the server returns the existing job instead of running the API twice.
   */
  jobUuid?: string;
  /** Called after each poll while the job runs. */
  onProgress?: (progress: JobProgress) => void;
  /** Overrides the client's retry policy for this call (`false`: never retry). */
  retry?: RetryOptions | false;
  /** System tags sent with the call. */
  systemTags?: string[];
  userTags?: string[];
  /** Extra HTTP headers. */
  headers?: Record<string, string>;
}

export interface QueryAllOptions extends CallOptions {
  /** Rows per request (default 500, at most the server's 1000). */
  pageSize?: number;
}

/** Operators of a query condition (`<field><op><value>`). */
export type ConditionOperator = '=' | '!=' | '>' | '<' | '>=' | '<=' | '?=' | '!?=' | '~=' | '!~=';
export type Scalar = string | number | boolean;
/**
 * The value of one field in the object form of query conditions:
 * `'x'` → `f=x`; `['a','b']` → `f?=a,b`; `null` → `f is null`; `{ '>=': 2 }` → `f>=2`; `{ '!=': null }` → `f not null`.
 */
export type ConditionValue<T extends Scalar = Scalar> =
  T | readonly T[] | null | ({ [op in ConditionOperator]?: T | readonly T[] | null } & { 'is null'?: true; 'not null'?: true });

type FieldScalar<T> = [NonNullable<T>] extends [Scalar] ? NonNullable<T> : never;

/** Query conditions as an object, typed by the inventory's fields; dotted names join (`'vmNics.ip'`). */
export type Conditions<I> = { [F in keyof I & string]?: ConditionValue<FieldScalar<I[F]>> } & {
  [path: `${string}.${string}`]: ConditionValue | undefined;
};

/** The inventory a Query API returns. */
export type InventoryOf<K extends OperationId> = ReplyOf<K> extends { inventories?: Array<infer I> } ? I : never;

/**
 * Parameters of a Query API: `q` as ZStack condition strings (`'vmNics.ip=10.0.0.5'`), one string, or the object
 * form; `fields` as `'a,b'` or a list.
 */
export type QueryParams<K extends OperationId> = Omit<ParamsOf<K>, 'q' | 'fields'> & {
  q?: string | readonly string[] | Conditions<InventoryOf<K>>;
  fields?: string | readonly (keyof InventoryOf<K> & string)[];
};

/**
 * What `call(apiName, params)` takes for an API: the query forms (`q` as an object, `fields` as a list) for Query
 * APIs, the API's own fields otherwise.
 */
export type CallParams<K extends OperationId> = K extends `Query${string}` ? QueryParams<K> : ParamsOf<K>;

/** The fields a Query API's `fields` may list (the inventory's own, not joins). */
export type FieldOf<K extends OperationId> = keyof InventoryOf<K> & string;

/** A Query API's reply when `fields` lists `F`: the server sends only those fields, and the type says so. */
export type ReplyWithFields<K extends OperationId, F extends FieldOf<K>> = Omit<ReplyOf<K>, 'inventories'> & {
  inventories?: Array<Pick<InventoryOf<K>, F>>;
};
