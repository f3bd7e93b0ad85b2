// Types of the SDK, derived from the generated API types (never written by hand per operation).
export type { ParamsOf, ReplyOf, OperationId as ApiName } from '@zstack-ts/openapi/helpers';

export interface OperationInfo {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  path: string;
  kind: 'async' | 'sync' | 'query' | 'poll';
  bodyKey: string | null;
  timeout: string;
  public: boolean;
  pathParams: readonly string[];
  queryParams: readonly string[];
}

export interface CallOptions {
  /** API timeout in ms; sent as `X-API-Timeout` (seconds) and bounds the wait for the job. */
  timeoutMs?: number;
  /** How often a job is polled (default 200 ms, backing off to 2 s). */
  pollIntervalMs?: number;
  /** Aborts the request and the wait for the job. */
  signal?: AbortSignal;
  /** Caller-chosen job uuid (32 hex chars): retrying with the same uuid never runs the API twice. */
  jobUuid?: string;
  /** System tags sent with the call. */
  systemTags?: string[];
  userTags?: string[];
}
