// The garbage collector (release notes §4): work that cannot be completed now — destroying a VM on a host that is
// unreachable, deleting bits on storage that is offline — is saved as a job row and re-run later: on a timer
// (`nextRunAt`), on events about its resource (host reconnected, host deleted, storage deleted), or on demand
// (TriggerGCJob). Jobs are claimed with one conditional UPDATE (Idle → Processing, rows taken FOR UPDATE SKIP
// LOCKED), so each runs at most once at a time across server processes; a dead node's jobs are adopted by the
// others; everything survives restarts.
//
// Jobs run in batches: an event claims the Idle jobs of its resource (up to `gc/batchSize` per statement), a runner
// with `runBatch` gets them all at once (one read of the shared state, one agent call per host), and the outcomes
// are recorded with one UPDATE per kind of outcome. Resources are worked through a few at a time
// (`gc/resourceConcurrency`), so jobs finish progressively and the rest of the server (e.g. the ReconnectHost calls
// that triggered them) keeps its share of the database pool.
import { and, eq, inArray, isNull, lt, lte, notInArray, or, sql, type SQL } from 'drizzle-orm';
import { decodeRow, rows, type Db } from '../db/index.js';
import { gcJobs } from '../db/schema/index.js';
import { deadlineSignal, runInContext, type CallContext } from './context.js';
import { formatDate } from './dates.js';
import { argErr, notFound, toApiError } from './errors.js';
import type { EventBus } from './events.js';
import type { GlobalConfigService } from './global-config.js';
import { newUuid } from './ids.js';
import { fieldsFromTable, type InventoryDescriptor } from './query.js';

export type GcJobRow = typeof gcJobs.$inferSelect;

/** done: the work is finished; cancel: the work no longer applies (target gone); retry: try again later. */
export type GcOutcome = 'done' | 'cancel' | 'retry';

/** One job's result in a batch: an outcome, or a failure (counts as `retry`, the error recorded on the job). */
export type GcResult = GcOutcome | { error: unknown };

export interface GcBatchItem<C = any> {
  context: C;
  job: GcJobRow;
  /** Aborted when this job is deleted (DeleteGCJob) while the batch runs: leave it out if not started yet. */
  signal: AbortSignal;
}

export interface GcRunner<C = any> {
  name: string;
  /** Throwing counts as `retry`, with the error recorded on the job. */
  run(context: C, job: GcJobRow, signal: AbortSignal): Promise<GcOutcome>;
  /**
   * Optional: runs several claimed jobs at once (shared reads, one agent call for many jobs). Returns one result per
   * item, in order; throwing counts as `retry` for all of them, with the error recorded. Without it, the jobs of a
   * batch are run one by one through `run`, a few at a time.
   */
  runBatch?(items: Array<GcBatchItem<C>>, signal: AbortSignal): Promise<GcResult[]>;
  /** Retry interval (ms) when no interval is given at submit. */
  intervalMs?(): number;
}

export interface SubmitGcJob<C> {
  name: string;
  runner: string;
  context: C;
  /** The resource whose events trigger the job (host uuid for host-side work). */
  resourceUuid?: string;
  intervalMs?: number;
  /** Run as soon as possible (next scan) instead of after one interval. */
  runSoon?: boolean;
}

const RUN_BUDGET_MS = 10 * 60_000;
/** Jobs of one batch run through `run` (runners without `runBatch`) at most this many at a time. */
const PER_JOB_CONCURRENCY = 16;

/** A raw `gc_jobs` row (snake_case, driver values) as drizzle would return it. */
const jobFromRow = (r: Record<string, unknown>): GcJobRow => decodeRow(gcJobs, r);

/** A counting semaphore: at most `limit()` tasks at once, the others wait in order. */
class Limiter {
  private active = 0;
  private waiting: Array<() => void> = [];
  constructor(private limit: () => number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit()) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export class GarbageCollector {
  private runners = new Map<string, GcRunner>();
  private running = new Map<string, AbortController>();
  /** Event-triggered passes per resource: one at a time; events arriving during a pass ask for one more. */
  private passes = new Map<string, { started: boolean; again: boolean; done: Promise<void> }>();
  private resourceLimiter: Limiter;

  constructor(
    private db: Db,
    private nodeUuid: string,
    private config: GlobalConfigService,
    events: EventBus,
  ) {
    config.define({
      category: 'gc',
      name: 'scanInterval',
      type: 'seconds',
      defaultValue: '5',
      min: 1,
      max: 3600,
      description: 'Seconds between scans for due garbage collector jobs',
    });
    config.define({
      category: 'gc',
      name: 'retryInterval',
      type: 'seconds',
      defaultValue: '60',
      min: 1,
      description: 'Default seconds before a failed garbage collector job is retried',
    });
    config.define({
      category: 'gc',
      name: 'retentionTime',
      type: 'seconds',
      defaultValue: '1209600',
      min: 1,
      description: 'Seconds a finished garbage collector job is kept (14 days)',
    });
    config.define({
      category: 'gc',
      name: 'cleanUpCompletedJobInterval',
      type: 'seconds',
      defaultValue: '86400',
      min: 1,
      description: 'Seconds between purges of finished garbage collector jobs',
    });
    config.define({
      category: 'gc',
      name: 'batchSize',
      type: 'int',
      defaultValue: '200',
      min: 1,
      max: 10000,
      description: 'Garbage collector jobs claimed and run together (per resource on an event, per scan on the timer)',
    });
    config.define({
      category: 'gc',
      name: 'resourceConcurrency',
      type: 'int',
      defaultValue: '8',
      min: 1,
      max: 1000,
      description: 'Resources (hosts, storage) whose garbage collector jobs run at the same time on this node',
    });
    this.resourceLimiter = new Limiter(() => this.config.getNumber('gc', 'resourceConcurrency'));
    // Event triggers: the host came back, the host or the storage is gone — the job decides what that means.
    events.on('host.status', (e) => (e.newStatus === 'Connected' ? this.runForResource(e.hostUuid) : undefined));
    events.on('host.deleted', (e) => this.runForResource(e.hostUuid));
    events.on('primaryStorage.deleted', (e) => this.runForResource(e.primaryStorageUuid));
  }

  register(runner: GcRunner): void {
    this.runners.set(runner.name, runner);
  }

  async submit<C>(job: SubmitGcJob<C>): Promise<GcJobRow> {
    const runner = this.runners.get(job.runner);
    if (!runner) throw new Error(`gc: no runner ${job.runner}`);
    const intervalMs = job.intervalMs ?? runner.intervalMs?.() ?? this.config.getMs('gc', 'retryInterval');
    const [row] = await this.db
      .insert(gcJobs)
      .values({
        uuid: newUuid(),
        name: job.name,
        runner: job.runner,
        context: job.context as object,
        type: job.resourceUuid ? 'EventBased' : 'TimeBased',
        managementNodeUuid: this.nodeUuid,
        resourceUuid: job.resourceUuid ?? null,
        intervalMs,
        nextRunAt: new Date(Date.now() + (job.runSoon ? 0 : intervalMs)),
      })
      .returning();
    return row;
  }

  /** TriggerGCJob: run now. A Done job cannot be triggered; a job running elsewhere is left to finish. */
  async trigger(uuid: string): Promise<void> {
    const [job] = await this.db.select().from(gcJobs).where(eq(gcJobs.uuid, uuid));
    if (!job) throw notFound('GarbageCollectorVO', uuid);
    if (job.status === 'Done') throw argErr(`cannot trigger a finished GC job[uuid:${uuid}, name:${job.name}]`);
    await this.runJob(uuid);
  }

  /** DeleteGCJob: cancels a run in progress here and deletes the record. */
  async delete(uuid: string): Promise<void> {
    this.running.get(uuid)?.abort();
    await this.db.delete(gcJobs).where(eq(gcJobs.uuid, uuid));
  }

  /**
   * Runs the Idle jobs of a resource now (event trigger), in batches, queued behind the passes of other resources
   * (`gc/resourceConcurrency`). A pass already queued for the resource is joined; one already running is followed
   * by one more pass (for jobs that became Idle meanwhile).
   */
  runForResource(resourceUuid: string): Promise<void> {
    const current = this.passes.get(resourceUuid);
    if (current) {
      if (current.started) current.again = true;
      return current.done;
    }
    const pass = { started: false, again: false, done: Promise.resolve() };
    pass.done = (async () => {
      try {
        do {
          pass.again = false;
          await this.resourceLimiter.run(async () => {
            pass.started = true;
            await this.resourcePass(resourceUuid);
          });
        } while (pass.again);
      } finally {
        this.passes.delete(resourceUuid);
      }
    })();
    this.passes.set(resourceUuid, pass);
    return pass.done;
  }

  /** Claims and runs batches of the resource's Idle jobs until none is left that this pass has not run already. */
  private async resourcePass(resourceUuid: string): Promise<void> {
    let passStart: string | undefined;
    for (;;) {
      const batchSize = this.config.getNumber('gc', 'batchSize');
      // Claims and outcomes stamp lastOpDate with the database's clock: jobs this pass already ran (and put back
      // to Idle on retry) are at or after the first claim's stamp, so no job runs twice in one pass. The stamp is
      // kept as the database's text (microseconds): as a JS Date (milliseconds, truncated) it would also leave out
      // the jobs written earlier in the same millisecond as the first claim (e.g. one submitted just before).
      const { jobs, stamp } = await this.claim(
        and(eq(gcJobs.resourceUuid, resourceUuid), passStart ? sql`${gcJobs.lastOpDate} < ${passStart}::timestamptz` : undefined)!,
        batchSize,
      );
      if (!jobs.length) return;
      passStart ??= stamp;
      await this.execute(jobs);
      if (jobs.length < batchSize) return;
    }
  }

  /**
   * Timer trigger: runs every due Idle job this node owns, or that has no live owner (adoption), a batch at a time
   * (a job put back to Idle is due again only after its interval, so it is not claimed twice). Returns how many ran.
   */
  async runDueJobs(liveNodes: string[], limit?: number): Promise<number> {
    const others = liveNodes.filter((n) => n !== this.nodeUuid);
    const ownerOk = others.length ? or(isNull(gcJobs.managementNodeUuid), notInArray(gcJobs.managementNodeUuid, others)) : undefined;
    let ran = 0;
    for (;;) {
      const batchSize = Math.min(this.config.getNumber('gc', 'batchSize'), limit === undefined ? Infinity : limit - ran);
      if (batchSize <= 0) return ran;
      const { jobs } = await this.claim(and(lte(gcJobs.nextRunAt, new Date()), ownerOk)!, batchSize);
      if (jobs.length) await this.execute(jobs);
      ran += jobs.length;
      if (jobs.length < batchSize) return ran;
    }
  }

  /** Jobs left Processing by dead nodes go back to Idle so someone runs them again. */
  async releaseOrphans(liveNodes: string[]): Promise<void> {
    await this.db
      .update(gcJobs)
      .set({ status: 'Idle', managementNodeUuid: null, lastOpDate: new Date() })
      .where(
        and(
          eq(gcJobs.status, 'Processing'),
          or(isNull(gcJobs.managementNodeUuid), liveNodes.length ? notInArray(gcJobs.managementNodeUuid, liveNodes) : undefined),
        ),
      );
  }

  async purge(): Promise<number> {
    const before = new Date(Date.now() - this.config.getMs('gc', 'retentionTime'));
    const gone = await this.db
      .delete(gcJobs)
      .where(and(eq(gcJobs.status, 'Done'), lt(gcJobs.lastOpDate, before)))
      .returning({ uuid: gcJobs.uuid });
    return gone.length;
  }

  /** Claims and runs one job; returns false when it was not Idle (done, running elsewhere, deleted). */
  async runJob(uuid: string): Promise<boolean> {
    const { jobs } = await this.claim(eq(gcJobs.uuid, uuid), 1);
    if (!jobs.length) return false;
    await this.execute(jobs);
    return true;
  }

  /**
   * Idle → Processing for up to `limit` Idle jobs matching `where`, in one statement: the rows are locked FOR UPDATE
   * SKIP LOCKED (another node claiming at the same moment gets other rows, never waits), then updated with
   * `status = 'Idle'` checked again, so a job is claimed by exactly one caller. The candidates are a MATERIALIZED
   * CTE: as a plain `IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` subquery they may be evaluated again and claim
   * more than n. `stamp`: the claim's `now()` (the claimed jobs' lastOpDate) as the database's text, to the microsecond.
   */
  private async claim(where: SQL, limit: number): Promise<{ jobs: GcJobRow[]; stamp?: string }> {
    const claimed = await rows(
      this.db,
      sql`WITH c AS MATERIALIZED (
            SELECT ${gcJobs.uuid} FROM ${gcJobs} WHERE ${and(eq(gcJobs.status, 'Idle'), where)}
            ORDER BY ${gcJobs.nextRunAt} LIMIT ${limit} FOR UPDATE SKIP LOCKED)
          UPDATE ${gcJobs} SET status = 'Processing', management_node_uuid = ${this.nodeUuid}, attempts = ${gcJobs.attempts} + 1, last_op_date = now()
          FROM c WHERE ${gcJobs.uuid} = c.uuid AND ${gcJobs.status} = 'Idle'
          RETURNING ${gcJobs}.*, now()::text AS claim_stamp`,
    );
    return { jobs: claimed.map(jobFromRow), stamp: claimed[0]?.claim_stamp as string | undefined };
  }

  /** Runs claimed jobs (grouped by runner, batched where the runner can) and records every outcome. */
  private async execute(jobs: GcJobRow[]): Promise<void> {
    const controllers = jobs.map((job) => {
      const c = new AbortController();
      this.running.set(job.uuid, c);
      return c;
    });
    const results = new Map<string, GcResult>();
    try {
      const byRunner = new Map<string, number[]>();
      jobs.forEach((job, i) => (byRunner.get(job.runner) ?? byRunner.set(job.runner, []).get(job.runner)!).push(i));
      await Promise.all(
        [...byRunner].map(async ([name, indexes]) => {
          const runner = this.runners.get(name);
          if (!runner) {
            for (const i of indexes) results.set(jobs[i].uuid, { error: new Error(`no runner ${name} on this node`) });
            return;
          }
          if (runner.runBatch) {
            const items = indexes.map((i) => ({ context: jobs[i].context, job: jobs[i], signal: controllers[i].signal }));
            const out = await this.inContext(`gc:${name}(${items.length})`, new AbortController().signal, (signal) => runner.runBatch!(items, signal)).catch(
              (error: unknown) => items.map((): GcResult => ({ error })),
            );
            indexes.forEach((i, k) => results.set(jobs[i].uuid, out[k] ?? { error: new Error(`runner ${name} returned no result for the job`) }));
            return;
          }
          await mapLimited(indexes, PER_JOB_CONCURRENCY, async (i) => {
            const job = jobs[i];
            const result = await this.inContext(`gc:${job.name}`, controllers[i].signal, (signal) => runner.run(job.context, job, signal)).catch(
              (error: unknown): GcResult => ({ error }),
            );
            results.set(job.uuid, result);
          });
        }),
      );
    } finally {
      for (const job of jobs) this.running.delete(job.uuid);
    }
    await this.record(jobs, results);
  }

  /** Runs `fn` in a background context of its own (budget RUN_BUDGET_MS, aborted by `abort` too). */
  private async inContext<T>(name: string, abort: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const now = Date.now();
    const deadline = deadlineSignal(now + RUN_BUDGET_MS);
    const signal = AbortSignal.any([deadline.signal, abort]);
    const ctx: CallContext = { apiName: name, startedAt: now, deadline: now + RUN_BUDGET_MS, timeoutMs: RUN_BUDGET_MS, signal, trace: { steps: [] } };
    try {
      return await runInContext(ctx, () => fn(signal));
    } finally {
      deadline.dispose();
    }
  }

  /** One UPDATE per kind of outcome, each only for jobs still Processing by this node (not deleted or released). */
  private async record(jobs: GcJobRow[], results: Map<string, GcResult>): Promise<void> {
    const mine = and(eq(gcJobs.status, 'Processing'), eq(gcJobs.managementNodeUuid, this.nodeUuid));
    const succeeded: string[] = [];
    const cancelled: string[] = [];
    const retry: Array<{ uuid: string; error: unknown }> = [];
    for (const job of jobs) {
      const r = results.get(job.uuid) ?? 'retry';
      if (r === 'done') succeeded.push(job.uuid);
      else if (r === 'cancel') cancelled.push(job.uuid);
      else retry.push({ uuid: job.uuid, error: typeof r === 'object' ? toApiError(r.error).error : null });
    }
    const finish = (uuids: string[], result: 'Succeeded' | 'Cancelled') =>
      uuids.length
        ? this.db
            .update(gcJobs)
            .set({ status: 'Done', result, lastError: null, lastOpDate: sql`now()` })
            .where(and(inArray(gcJobs.uuid, uuids), mine))
        : undefined;
    await Promise.all([
      finish(succeeded, 'Succeeded'),
      finish(cancelled, 'Cancelled'),
      retry.length
        ? this.db.execute(sql`
            UPDATE ${gcJobs} SET status = 'Idle', last_error = r.error, last_op_date = now(),
              next_run_at = now() + ${gcJobs.intervalMs} * interval '1 millisecond'
            FROM json_to_recordset(${JSON.stringify(retry)}::json) AS r(uuid text, error jsonb)
            WHERE ${gcJobs.uuid} = r.uuid AND ${gcJobs.status} = 'Processing' AND ${gcJobs.managementNodeUuid} = ${this.nodeUuid}`)
        : undefined,
    ]);
  }

  async countByStatus(uuids: string[]): Promise<Record<string, number>> {
    const rows = await this.db.select({ status: gcJobs.status }).from(gcJobs).where(inArray(gcJobs.uuid, uuids));
    return rows.reduce<Record<string, number>>((acc, r) => ((acc[r.status] = (acc[r.status] ?? 0) + 1), acc), {});
  }
}

export const gcJobDescriptor: InventoryDescriptor<GcJobRow> = {
  name: 'GarbageCollectorInventory',
  table: gcJobs,
  fields: fieldsFromTable(gcJobs, { rename: { runner: 'runnerClass', nextRunAt: 'nextRunTime' }, exclude: ['intervalMs'] }),
  defaultSort: 'createDate',
  toInventories: async (rows) =>
    rows.map((j) => ({
      uuid: j.uuid,
      name: j.name,
      runnerClass: j.runner,
      context: JSON.stringify(j.context),
      status: j.status as 'Idle' | 'Processing' | 'Done',
      managementNodeUuid: j.managementNodeUuid ?? undefined,
      type: j.type as 'TimeBased' | 'EventBased',
      resourceUuid: j.resourceUuid ?? undefined,
      nextRunTime: formatDate(j.nextRunAt),
      attempts: j.attempts,
      lastError: (j.lastError as never) ?? undefined,
      result: (j.result as 'Succeeded' | 'Cancelled' | null) ?? undefined,
      createDate: formatDate(j.createDate)!,
      lastOpDate: formatDate(j.lastOpDate)!,
    })),
};
