// The one HTTP client to agents. Every call carries the caller's remaining time (`X-Zstack-Timeout-Ms`) so the
// agent aborts work the caller has given up on, the agent's secret, and the target resource's uuid (the simulator
// serves many hosts in one process). Failures come back as ZStack errors: SYS.1015 when the agent cannot be
// reached or answers badly, SYS.1006 with the agent's own message when it reports `success: false`, SYS.1001
// when the call's deadline passes (a late reply is then dropped: the request is aborted, nothing reads it).
import http from 'node:http';
import https from 'node:https';
import { currentContext, deadlineSignal, remainingMs, timeoutError, backgroundContext } from '../core/context.js';
import { ApiError, errorCode } from '../core/errors.js';
import type { AgentOperations } from '@zstack-ts/openapi/agent-operations';

// node:http(s) with keep-alive connections, not fetch: fetch's WHATWG streams cost ≈ 0.35 ms of CPU per call more
// (measured: 463 vs 119 µs per call, client and server in one process), and a VM creation makes two agent calls.
const keepAlive = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/**
 * POSTs a JSON body; the status and text of the answer. Rejects with the socket's error (its `code`) or on abort. A
 * request sent on a kept-alive socket that the agent closed meanwhile (ECONNRESET/EPIPE before any answer) was never
 * read by the agent: it is sent once more on a new connection (not another kept-alive one: the pool may hold several
 * sockets to an agent that died, and a fresh connection tells a dead agent, ECONNREFUSED, from a live one).
 */
function postJson(url: string, headers: Record<string, string>, body: string, signal: AbortSignal, retried = false): Promise<{ status: number; text: string }> {
  const tls = url.startsWith('https:');
  return new Promise((resolve, reject) => {
    const options = {
      method: 'POST',
      agent: retried ? false : tls ? keepAlive.https : keepAlive.http,
      headers: { ...headers, 'content-length': Buffer.byteLength(body) },
      signal,
    };
    const onResponse = (res: http.IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    };
    const req = tls ? https.request(url, options, onResponse) : http.request(url, options, onResponse);
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!retried && req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE') && !signal.aborted) {
        postJson(url, headers, body, signal, true).then(resolve, reject);
      } else reject(e);
    });
    req.end(body);
  });
}

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

/** An agent command's path; the spec (openapi/agents/protocol.yaml) lists them, generated into AgentOperations. */
export type AgentPath = keyof AgentOperations;
/** The commands of one kind of agent (`x-zstack-target`: host, backupstorage, virtualrouter, console, simulator…). */
export type AgentPathOf<T extends AgentOperations[AgentPath]['target']> = { [P in AgentPath]: AgentOperations[P]['target'] extends T ? P : never }[AgentPath];
/** The JSON body of an agent command. */
export type AgentRequest<P extends AgentPath> = AgentOperations[P]['request'];
/** The reply of an agent command that succeeded. */
export type AgentResponse<P extends AgentPath> = AgentOperations[P]['response'];

/** An agent this node starts itself when a call first needs it (agent-client/local-agent.ts OnDemandAgent). */
export interface OnDemand {
  /** The running agent's URL, started first when it is not running. */
  url(): Promise<string>;
  /** The agent at `url` refused a connection: it is gone (or going); the next url() starts another. */
  unreachable(url: string): Promise<void>;
}

/** Nothing listens at the agent's address (as opposed to a slow or failing agent). */
class AgentRefused extends ApiError {}

export class AgentClient {
  /** Calls made (path → count), for diagnostics and tests. */
  readonly stats = new Map<string, number>();

  constructor(
    private defaultSecret?: string,
    /** Budget configured for an agent path (zstack.properties relatives); never more than the caller's time. */
    private budgetFor: (path: string) => number | undefined = () => undefined,
  ) {}

  /** Base URLs standing for agents this node starts when a call first needs them → their real URL (started). */
  private readonly onDemand = new Map<string, OnDemand>();

  /**
   * Calls to `baseUrl` go to the agent `start` resolves to: `start` runs the agent when it is not running (the first
   * call that needs it; again after it exited) — `npm start`'s simulator (agent-client/local-agent.ts OnDemandAgent).
   */
  startOnDemand(baseUrl: string, agent: OnDemand): void {
    this.onDemand.set(baseUrl, agent);
  }

  /** Runs the agent command `path` (typed by the spec: body and reply) at the agent at `baseUrl`. */
  async call<P extends AgentPath>(baseUrl: string, path: P, body: AgentRequest<P>, opts: AgentCallOptions = {}): Promise<AgentResponse<P>> {
    const onDemand = this.onDemand.get(baseUrl);
    if (!onDemand) return this.callAt(baseUrl, path, body, opts);
    const started = async () => {
      try {
        return await onDemand.url(); // its start-up time counts against the call's deadline
      } catch (e) {
        throw new ApiError(errorCode('SYS.1015', `cannot start the agent at ${baseUrl}: ${(e as Error).message}`), 503);
      }
    };
    const url = await started();
    try {
      return await this.callAt(url, path, body, opts);
    } catch (e) {
      // A local agent refusing its own port has died (its exit may not be seen yet): once, it is started again.
      if (!(e instanceof AgentRefused)) throw e;
      await onDemand.unreachable(url);
      return this.callAt(await started(), path, body, opts);
    }
  }

  private async callAt<P extends AgentPath>(baseUrl: string, path: P, body: AgentRequest<P>, opts: AgentCallOptions): Promise<AgentResponse<P>> {
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
    let res: { status: number; text: string };
    try {
      res = await postJson(url, headers, JSON.stringify(body), signal);
    } catch (e) {
      if (signal.aborted) {
        // Our own budget ran out (or the whole call's): a timeout, not an unreachable agent.
        const apiExpired = ctx.signal.aborted || Date.now() >= ctx.deadline;
        throw apiExpired || ownBudget === undefined
          ? timeoutError(ctx, `agent ${path}`)
          : new ApiError(errorCode('SYS.1001', `agent call ${url} timed out after ${budget} ms`), 503);
      }
      const reason = e as { code?: string; message?: string };
      const error = errorCode('SYS.1015', `cannot reach the agent at ${url}: ${reason.code ?? reason.message}`);
      throw reason.code === 'ECONNREFUSED' ? new AgentRefused(error, 503) : new ApiError(error, 503);
    } finally {
      own.dispose();
    }
    const text = res.text;
    let reply: AgentResponse<P> & AgentReply;
    try {
      reply = JSON.parse(text) as AgentResponse<P> & AgentReply;
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
