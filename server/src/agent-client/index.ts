// The one HTTP client to agents. Every call carries the caller's remaining time (`X-Zstack-Timeout-Ms`) so the
// agent aborts work the caller has given up on, the agent's secret, and the target resource's uuid (the simulator
// serves many hosts in one process). Failures come back as ZStack errors: SYS.1015 when the agent cannot be
// reached or answers badly, SYS.1006 with the agent's own message when it reports `success: false`, SYS.1001
// when the call's deadline passes (a late reply is then dropped: the request is aborted, nothing reads it).
import { currentContext, deadlineSignal, remainingMs, timeoutError, backgroundContext } from '../core/context.js';
import { ApiError, errorCode } from '../core/errors.js';

export interface AgentCallOptions {
  /** Resource the call is about (host, backup storage, virtual router uuid). */
  targetUuid?: string;
  /** A budget shorter than the caller's remaining time (e.g. pings). */
  timeoutMs?: number;
  secret?: string;
}

export interface AgentReply {
  success: boolean;
  error?: string;
}

export class AgentClient {
  /** Calls made (path → count), for diagnostics and tests. */
  readonly stats = new Map<string, number>();

  constructor(
    private defaultSecret?: string,
    /** Budget configured for an agent path (zstack.properties relatives); never more than the caller's time. */
    private budgetFor: (path: string) => number | undefined = () => undefined,
  ) {}

  async call<R extends AgentReply = AgentReply>(baseUrl: string, path: string, body: object, opts: AgentCallOptions = {}): Promise<R> {
    // Outside any call: the call's own timer below is its deadline.
    const ctx = currentContext() ?? backgroundContext(`agent ${path}`, undefined, { timer: false });
    const ownBudget = opts.timeoutMs ?? this.budgetFor(path);
    const budget = Math.min(remainingMs(), ownBudget ?? Infinity);
    if (budget <= 0) throw timeoutError(ctx, `agent ${path}`);
    // A disposable timer, cleared once the reply is read (a pending AbortSignal.timeout would keep the request's
    // state alive until it fires, for as long as the call's budget).
    const own = deadlineSignal(Date.now() + budget);
    const signal = AbortSignal.any([ctx.signal, own.signal]);
    const url = baseUrl.replace(/\/$/, '') + path;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'X-Zstack-Timeout-Ms': String(Math.floor(budget)) };
    const secret = opts.secret ?? this.defaultSecret;
    if (secret) headers.authorization = `Bearer ${secret}`;
    if (opts.targetUuid) headers['X-Zstack-Target-Uuid'] = opts.targetUuid;
    this.stats.set(path, (this.stats.get(path) ?? 0) + 1);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal });
      text = await res.text();
    } catch (e) {
      if (signal.aborted) {
        // Our own budget ran out (or the whole call's): a timeout, not an unreachable agent.
        const apiExpired = ctx.signal.aborted || Date.now() >= ctx.deadline;
        throw apiExpired || ownBudget === undefined
          ? timeoutError(ctx, `agent ${path}`)
          : new ApiError(errorCode('SYS.1001', `agent call ${url} timed out after ${budget} ms`), 503);
      }
      const reason = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(errorCode('SYS.1015', `cannot reach the agent at ${url}: ${reason?.code ?? reason?.message ?? (e as Error).message}`), 503);
    } finally {
      own.dispose();
    }
    let reply: R;
    try {
      reply = JSON.parse(text) as R;
    } catch {
      throw new ApiError(errorCode('SYS.1015', `the agent at ${url} answered HTTP ${res.status} with a non-JSON body: ${text.slice(0, 200)}`), 503);
    }
    if (res.status !== 200) {
      throw new ApiError(errorCode('SYS.1015', `the agent at ${url} answered HTTP ${res.status}: ${reply.error ?? text.slice(0, 200)}`), 503);
    }
    if (reply.success === false) {
      // The agent ran out of the time we gave it a moment before our own timer fired: still a timeout.
      if (/^deadline exceeded/.test(reply.error ?? '')) throw timeoutError(ctx, `agent ${path}`);
      throw new ApiError(errorCode('SYS.1006', `agent ${path} failed: ${reply.error ?? 'no reason given'}`), 503);
    }
    return reply;
  }
}

/** True when an error means the agent could not be reached (GC-eligible), not that it refused. */
export const isUnreachable = (e: unknown) => e instanceof ApiError && (e.error.code === 'SYS.1015' || e.error.code === 'HOST.1010');
