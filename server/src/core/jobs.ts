// API jobs: every asynchronous API call is a persisted job. The job row is written before the 202 answer, runs in
// its own call context (deadline + AbortSignal), and ends `done` or `failed` exactly once. `X-Job-UUID` makes a
// retried request find its job instead of running twice; jobs of a dead server are failed, never left running.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { and, eq, inArray, lt, ne, notInArray, sql } from 'drizzle-orm';
import { decodeRow, type Db } from '../db/index.js';
import { StatementTemplates } from '../db/perf/template.js';
import { apiJobs, managementNodes } from '../db/schema/index.js';
import { Batcher } from './batcher.js';
import { inBackground, urgently } from './turns.js';
import { deadlineSignal, raceAbort, runInContext, timeoutError, type CallContext, type JobProgress, type SessionInfo } from './context.js';
import { argErr, describeError, errorCode, toApiError, type ErrorCode } from './errors.js';
import { badString, inputProblem, MAX_TIMEOUT_MS } from './input.js';

/** How long a job finished here is answered from memory (far below the retention of finished jobs). */
const FINISHED_CACHE_MS = 10_000;

/**
 * At the deadline a job's work is told to stop and starts rolling back. Its failure is recorded as soon as that
 * compensation is done, but never later than this after the deadline: then the SYS.1001 is reported and the
 * compensation goes on (under the resource's lock, within the rollback budget; `drain` waits for it).
 */
export const REPORT_GRACE_MS = 50;

export type JobStatus = 'processing' | 'done' | 'failed';

export interface JobRecord {
  uuid: string;
  apiName: string;
  status: JobStatus;
  result: unknown;
  error: ErrorCode | null;
  timeoutMs: number;
}

export interface SubmitOptions {
  uuid: string;
  apiName: string;
  request: unknown;
  timeoutMs: number;
  /** When the request arrived (default: now): the API's deadline counts from there, checks included. */
  startedAt?: number;
  session?: SessionInfo;
  /** The base URL the caller reached this server at (context.ts). */
  origin?: string;
  /** The call synced with the other nodes on arrival (context.ts): the job's memo reads may use it. */
  changesSynced?: boolean;
  webHook?: string;
  /** The reply as a webhook may carry it (the operation's reply secrets redacted: core/secrets.ts). */
  redactReply?: (reply: unknown) => unknown;
  run: () => Promise<unknown>;
}

interface JobInsert {
  uuid: string;
  apiName: string;
  request: unknown;
  timeoutMs: number;
  deadline: Date;
  sessionUuid: string | null;
  webHook: string | null;
}

interface JobFinish {
  uuid: string;
  status: JobStatus;
  /** JSON text or null. */
  result: string | null;
  error: string | null;
  at: Date;
}

/** The job writes' two texts, rendered once (db/perf/template.ts). */
const jobStatements = new StatementTemplates();

export class JobService {
  /** Jobs of this process whose outcome is not recorded yet. */
  private running = new Map<string, Promise<void>>();
  /** The contexts of the jobs running here (their progress). */
  private contexts = new Map<string, CallContext>();
  /** Work of failed jobs still compensating after their failure was recorded (a graceful stop waits for it). */
  private compensating = new Set<Promise<unknown>>();
  /** Jobs this process finished in the last FINISHED_CACHE_MS, as recorded (a finished row never changes). */
  private finished = new Map<string, { job: JobRecord; at: number }>();

  /**
   * Every async call writes its job twice, at its start and at its end. Both writes go through batchers: the jobs
   * that start (or end) while one such statement runs are written together by the next, one statement over arrays.
   */
  private inserts = new Batcher<JobInsert, typeof apiJobs.$inferSelect | undefined>((batch) => urgently(() => this.insertJobs(batch)));
  private finishes = new Batcher<JobFinish, boolean>((batch) => urgently(() => this.finishJobs(batch)));

  constructor(
    private db: Db,
    private nodeUuid: string,
  ) {}

  /** Inserts the jobs of a batch; a job whose uuid exists already (or earlier in the batch) gets `undefined`. */
  private async insertJobs(batch: JobInsert[]): Promise<Array<typeof apiJobs.$inferSelect | undefined>> {
    const inserted = await jobStatements.rows<Record<string, unknown>>(
      this.db,
      'api-job-insert',
      (bind) => sql`INSERT INTO ${apiJobs} (uuid, api_name, request, status, timeout_ms, deadline, owner_node, session_uuid, web_hook)
          SELECT j.uuid, j.api_name, j.request, 'processing', j.timeout_ms, j.deadline, ${bind('ownerNode', this.nodeUuid)}, j.session_uuid, j.web_hook
            FROM unnest(${bind.array(
              'uuids',
              batch.map((j) => j.uuid),
            )}::text[], ${bind.array(
              'apiNames',
              batch.map((j) => j.apiName),
            )}::text[],
                        ${bind.array(
                          'requests',
                          batch.map((j) => JSON.stringify(j.request ?? null)),
                        )}::jsonb[], ${bind.array(
                          'timeouts',
                          batch.map((j) => j.timeoutMs),
                        )}::int[],
                        ${bind.array(
                          'deadlines',
                          batch.map((j) => j.deadline.toISOString()),
                        )}::timestamptz[], ${bind.array(
                          'sessions',
                          batch.map((j) => j.sessionUuid),
                        )}::text[],
                        ${bind.array(
                          'webHooks',
                          batch.map((j) => j.webHook),
                        )}::text[])
                 AS j(uuid, api_name, request, timeout_ms, deadline, session_uuid, web_hook)
          ON CONFLICT DO NOTHING RETURNING *`,
    );
    const byUuid = new Map(inserted.map((r) => [r.uuid as string, decodeRow(apiJobs, r)]));
    // Two calls with the same X-Job-UUID in one batch: the first inserted it, the second finds it.
    return batch.map((j) => {
      const row = byUuid.get(j.uuid);
      byUuid.delete(j.uuid);
      return row;
    });
  }

  /** Records the ends of a batch of jobs; false for a job that was not `processing` (it is finished exactly once). */
  private async finishJobs(batch: JobFinish[]): Promise<boolean[]> {
    const uuids = batch.map((j) => j.uuid);
    const updated = await jobStatements.rows<{ uuid: string }>(
      this.db,
      'api-job-finish',
      // result as json text (key order kept) and error as jsonb, or SQL NULL.
      (bind) => sql`UPDATE ${apiJobs} SET status = f.status, result = f.result::json, error = f.error::jsonb, last_op_date = f.at
            FROM unnest(${bind.array('uuids', uuids)}::text[], ${bind.array(
              'statuses',
              batch.map((j) => j.status),
            )}::text[], ${bind.array(
              'results',
              batch.map((j) => j.result),
            )}::text[],
                        ${bind.array(
                          'errors',
                          batch.map((j) => j.error),
                        )}::text[], ${bind.array(
                          'ats',
                          batch.map((j) => j.at.toISOString()),
                        )}::timestamptz[])
                 AS f(uuid, status, result, error, at)
           WHERE ${apiJobs.uuid} = ANY(${bind.array('uuids', uuids)}::text[]) AND ${apiJobs.uuid} = f.uuid AND ${apiJobs.status} = 'processing'
          RETURNING ${apiJobs.uuid}`,
    );
    const done = new Set(updated.map((r) => r.uuid));
    return batch.map((j) => done.has(j.uuid));
  }

  /** Stores the job and starts it; a known uuid returns the existing job (created=false) without running again. */
  async submit(o: SubmitOptions): Promise<{ job: JobRecord; created: boolean }> {
    const now = o.startedAt ?? Date.now();
    // Everything that joins the shared insert is checked first: one bad value must not fail the others' statement.
    const problem = inputProblem(o.request, '');
    if (problem) throw argErr(problem);
    if (!Number.isInteger(o.timeoutMs) || o.timeoutMs < 1 || o.timeoutMs > MAX_TIMEOUT_MS) {
      throw argErr(`the API timeout must be from 1 ms to ${MAX_TIMEOUT_MS} ms (24.8 days), got ${o.timeoutMs}`);
    }
    if (o.webHook !== undefined && (badString(o.webHook) || o.webHook.length > 2048 || !/^https?:\/\//i.test(o.webHook))) {
      throw argErr('header X-Web-Hook must be an http(s) URL of at most 2048 characters');
    }
    const inserted = await this.inserts.add({
      uuid: o.uuid,
      apiName: o.apiName,
      request: o.request,
      timeoutMs: o.timeoutMs,
      deadline: new Date(now + o.timeoutMs),
      sessionUuid: o.session?.uuid ?? null,
      webHook: o.webHook ?? null,
    });
    if (!inserted) {
      const existing = await this.get(o.uuid);
      if (!existing) throw argErr(`job uuid[${o.uuid}] cannot be used`);
      if (existing.apiName !== o.apiName) {
        throw argErr(`duplicate job uuid[${o.uuid}]: it belongs to a ${existing.apiName} call, not ${o.apiName}`);
      }
      return { job: existing, created: false };
    }
    const deadline = deadlineSignal(now + o.timeoutMs);
    const ctx: CallContext = {
      apiName: o.apiName,
      jobUuid: o.uuid,
      startedAt: now,
      deadline: now + o.timeoutMs,
      timeoutMs: o.timeoutMs,
      signal: deadline.signal,
      session: o.session,
      origin: o.origin,
      changesSynced: o.changesSynced,
      // Named by a timeout that interrupts the handler outside any step (e.g. in a database write of its own).
      trace: { steps: [], phase: `${o.apiName}/run` },
    };
    const execution = this.execute(ctx, o.run, o.webHook, o.redactReply).finally(() => {
      deadline.dispose();
      this.running.delete(o.uuid);
      this.contexts.delete(o.uuid);
    });
    this.running.set(o.uuid, execution);
    this.contexts.set(o.uuid, ctx);
    return { job: toRecord(inserted), created: true };
  }

  private async execute(ctx: CallContext, run: () => Promise<unknown>, webHook?: string, redact?: (reply: unknown) => unknown): Promise<void> {
    let result: unknown;
    let error: ErrorCode | undefined;
    // The job's work is background; its outcome record and web hook below keep the request's urgency (turns.ts).
    const work = inBackground(() => runInContext(ctx, run));
    // The handler may go on after the deadline; its late outcome must not surface as an unhandled rejection.
    work.catch(() => undefined);
    try {
      result = await raceAbort(ctx.signal, work, () => timeoutError(ctx));
    } catch (e) {
      error = toApiError(e).error;
      if (ctx.signal.aborted) {
        // Within the grace: the work's own SYS.1001 once its rollback has ended (it names the step it interrupted),
        // or its success when it completed all the same (then the outcome is what happened). Otherwise the failure
        // goes out now and the work compensates in the background. (The error is built now, not when the timer
        // fired: an agent call that is no step has named itself by then.)
        const settled = await settledTimeout(work, REPORT_GRACE_MS);
        if (!settled.settled) {
          error = timeoutError(ctx).error;
          this.compensateInBackground(ctx, work);
        } else if (!settled.error) {
          result = settled.value;
          error = undefined;
        } else error = settled.error.code === 'SYS.1001' ? settled.error : timeoutError(ctx).error;
      }
    }
    let status: JobStatus = error ? 'failed' : 'done';
    let body = error ? null : { ...(result as object), success: true };
    const recorded = await this.finishes
      .add({ uuid: ctx.jobUuid!, status, result: body && JSON.stringify(body), error: error ? JSON.stringify(error) : null, at: new Date() })
      // An outcome that cannot be stored (its statement failed alone: see Batcher) is recorded as the internal
      // error it is, so the job still ends and its poll answers.
      .catch((e) => {
        error = toApiError(e).error;
        status = 'failed';
        body = null;
        return this.finishes.add({ uuid: ctx.jobUuid!, status: 'failed', result: null, error: JSON.stringify(error), at: new Date() });
      })
      .catch((e) => void console.error(`[jobs] cannot record the end of job ${ctx.jobUuid}: ${describeError(e)}`));
    // What was just written is what a poll reads next: kept briefly so the final poll needs no query. (Successes
    // only: `result` is json and reads back as written; `error` is jsonb, whose key order differs.)
    if (recorded && status === 'done') {
      this.remember({ uuid: ctx.jobUuid!, apiName: ctx.apiName, status, result: body, error: error ?? null, timeoutMs: ctx.timeoutMs });
    }
    if (webHook) void postWebHook(webHook, ctx.jobUuid!, error ? { error } : redact ? redact(body) : body);
  }

  /** Keeps the timed-out work of a job whose failure is reported tracked until its rollback has ended. */
  private compensateInBackground(ctx: CallContext, work: Promise<unknown>): void {
    const settled = work.then(
      // Work that ignored its signal and completed anyway: the caller was told SYS.1001; the operator is told this.
      () => console.error(`[jobs] job ${ctx.jobUuid} (${ctx.apiName}) completed after its timeout was reported; its result was dropped`),
      () => undefined,
    );
    this.compensating.add(settled);
    void settled.finally(() => this.compensating.delete(settled));
  }

  private remember(job: JobRecord): void {
    const now = Date.now();
    for (const [uuid, f] of this.finished) {
      if (now - f.at < FINISHED_CACHE_MS) break;
      this.finished.delete(uuid);
    }
    this.finished.set(job.uuid, { job, at: now });
  }

  async get(uuid: string): Promise<JobRecord | undefined> {
    const f = this.finished.get(uuid);
    if (f && Date.now() - f.at < FINISHED_CACHE_MS) return f.job;
    const [row] = await this.db.select().from(apiJobs).where(eq(apiJobs.uuid, uuid));
    return row ? toRecord(row) : undefined;
  }

  /** True while the job runs in this process: its row says `processing` (it is finished before it leaves this map). */
  isRunningHere(uuid: string): boolean {
    return this.running.has(uuid);
  }

  /** How far a job running here got (undefined before it reports, or when it runs elsewhere). */
  progressOf(uuid: string): JobProgress | undefined {
    return this.contexts.get(uuid)?.trace.progress;
  }

  /** Resolves when the job's outcome is recorded (in this process); a timed-out job may still be rolling back (see drain). */
  async wait(uuid: string): Promise<void> {
    await this.running.get(uuid);
  }

  /** Waits for every job running in this process, and for the rollbacks of those that timed out (graceful stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
    await Promise.allSettled([...this.compensating]);
  }

  /** Timed-out jobs whose failure is recorded while their rollback still runs (tests, diagnostics). */
  get compensatingCount(): number {
    return this.compensating.size;
  }

  /**
   * Fails the jobs left `processing` by server processes that are gone: this node's predecessors and any node
   * whose heartbeat stopped. Called at start and by the heartbeat loop.
   */
  async failOrphans(liveNodes: string[]): Promise<number> {
    const error = errorCode(
      'SYS.1006',
      'the management node running this job stopped before the job finished; its outcome is unknown, check the resources it touched and retry',
    );
    const orphaned = await this.db
      .update(apiJobs)
      .set({ status: 'failed', error, lastOpDate: new Date() })
      .where(and(eq(apiJobs.status, 'processing'), liveNodes.length ? notInArray(apiJobs.ownerNode, liveNodes) : undefined))
      .returning({ uuid: apiJobs.uuid, webHook: apiJobs.webHook });
    // Their callers asked to be told how the job ended (X-Web-Hook): they are, by the node whose update took the job
    // (one UPDATE claims each row, so each hook is called once).
    for (const { uuid, webHook } of orphaned) if (webHook) void postWebHook(webHook, uuid, { error });
    return orphaned.length;
  }

  /** Deletes finished jobs older than the retention period. */
  async purge(olderThanMs: number): Promise<number> {
    const gone = await this.db
      .delete(apiJobs)
      .where(and(ne(apiJobs.status, 'processing'), lt(apiJobs.lastOpDate, new Date(Date.now() - olderThanMs))))
      .returning({ uuid: apiJobs.uuid });
    for (const { uuid } of gone) this.finished.delete(uuid);
    return gone.length;
  }

  /** Live management nodes (for orphan detection) — those whose heartbeat is recent. */
  async liveNodes(staleAfterMs: number): Promise<string[]> {
    const nodes = await this.db
      .select({ uuid: managementNodes.uuid })
      .from(managementNodes)
      .where(sql`${managementNodes.heartBeat} > now() - make_interval(secs => ${staleAfterMs / 1000})`);
    return nodes.map((n) => n.uuid);
  }

  async count(status: JobStatus, uuids: string[]): Promise<number> {
    const rows = await this.db
      .select({ uuid: apiJobs.uuid })
      .from(apiJobs)
      .where(and(eq(apiJobs.status, status), inArray(apiJobs.uuid, uuids)));
    return rows.length;
  }
}

/** How a job's work ends within `ms` of its deadline: `settled` with its value or error, or not yet (rolling back). */
async function settledTimeout(work: Promise<unknown>, ms: number): Promise<{ settled: boolean; value?: unknown; error?: ErrorCode }> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work.then(
      (value) => ({ settled: true, value }),
      (e: unknown) => ({ settled: true, error: toApiError(e).error }),
    ),
    new Promise<{ settled: false }>((r) => (timer = setTimeout(() => r({ settled: false }), ms))),
  ]).finally(() => clearTimeout(timer));
}

function toRecord(row: typeof apiJobs.$inferSelect): JobRecord {
  return {
    uuid: row.uuid,
    apiName: row.apiName,
    status: row.status as JobStatus,
    result: row.result,
    error: (row.error as ErrorCode | null) ?? null,
    timeoutMs: row.timeoutMs,
  };
}

/** Upstream's X-Web-Hook: POST the poll body, retried up to 15 times 2 s apart until a 2xx. */
async function postWebHook(url: string, jobUuid: string, body: unknown): Promise<void> {
  const success = !(body && typeof body === 'object' && 'error' in body);
  const text = JSON.stringify(body);
  const headers = { 'content-type': 'application/json', 'X-Job-UUID': jobUuid, 'X-Job-Success': String(success) };
  for (let attempt = 0; attempt < 15; attempt++) {
    const status = await postOnce(url, headers, text).catch(() => 0);
    if (status >= 200 && status < 300) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
  console.error(`[jobs] web hook ${url} for job ${jobUuid} failed 15 times; giving up`);
}

/**
 * One POST with node:http (keep-alive agent): a fraction of fetch's CPU, which counts when a hundred jobs fail at the
 * same deadline and their hooks go out together. Resolves with the status (the body is read and dropped).
 */
function postOnce(url: string, headers: Record<string, string>, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(text) }, timeout: 10_000 }, (res) => {
      res.on('error', reject);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.resume();
    });
    req.on('timeout', () => req.destroy(new Error('web hook timed out')));
    req.on('error', reject);
    req.end(text);
  });
}
