// The garbage collector (release notes §4): work that cannot be completed now — destroying a VM on a host that is
// unreachable, deleting bits on storage that is offline — is saved as a job row and re-run later: on a timer
// (`nextRunAt`), on events about its resource (host reconnected, host deleted, storage deleted), or on demand
// (TriggerGCJob). A job is claimed with one conditional UPDATE (Idle → Processing), so it runs at most once at a
// time across server processes; a dead node's jobs are adopted by the others; everything survives restarts.
import { and, eq, inArray, isNull, lt, lte, notInArray, or, sql } from 'drizzle-orm';
import type { Db } from '../db/index.js';
import { gcJobs } from '../db/schema/index.js';
import { backgroundContext, runInContext } from './context.js';
import { formatDate } from './dates.js';
import { argErr, notFound, toApiError } from './errors.js';
import type { EventBus } from './events.js';
import type { GlobalConfigService } from './global-config.js';
import { newUuid } from './ids.js';
import { fieldsFromTable, type InventoryDescriptor } from './query.js';

export type GcJobRow = typeof gcJobs.$inferSelect;

/** done: the work is finished; cancel: the work no longer applies (target gone); retry: try again later. */
export type GcOutcome = 'done' | 'cancel' | 'retry';

export interface GcRunner<C = any> {
  name: string;
  /** Throwing counts as `retry`, with the error recorded on the job. */
  run(context: C, job: GcJobRow, signal: AbortSignal): Promise<GcOutcome>;
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

export class GarbageCollector {
  private runners = new Map<string, GcRunner>();
  private running = new Map<string, AbortController>();

  constructor(
    private db: Db,
    private nodeUuid: string,
    private config: GlobalConfigService,
    events: EventBus,
  ) {
    config.define({ category: 'gc', name: 'scanInterval', type: 'seconds', defaultValue: '5', min: 1, max: 3600, description: 'Seconds between scans for due garbage collector jobs' });
    config.define({ category: 'gc', name: 'retryInterval', type: 'seconds', defaultValue: '60', min: 1, description: 'Default seconds before a failed garbage collector job is retried' });
    config.define({ category: 'gc', name: 'retentionTime', type: 'seconds', defaultValue: '1209600', min: 1, description: 'Seconds a finished garbage collector job is kept (14 days)' });
    config.define({ category: 'gc', name: 'cleanUpCompletedJobInterval', type: 'seconds', defaultValue: '86400', min: 1, description: 'Seconds between purges of finished garbage collector jobs' });
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

  /** Runs the Idle jobs of a resource now (event trigger). */
  async runForResource(resourceUuid: string): Promise<void> {
    const jobs = await this.db
      .select({ uuid: gcJobs.uuid })
      .from(gcJobs)
      .where(and(eq(gcJobs.resourceUuid, resourceUuid), eq(gcJobs.status, 'Idle')));
    await Promise.all(jobs.map((j) => this.runJob(j.uuid)));
  }

  /** Timer trigger: runs every due Idle job this node owns, or that has no live owner (adoption). */
  async runDueJobs(liveNodes: string[], limit = 500): Promise<number> {
    const others = liveNodes.filter((n) => n !== this.nodeUuid);
    const due = await this.db
      .select({ uuid: gcJobs.uuid })
      .from(gcJobs)
      .where(
        and(
          eq(gcJobs.status, 'Idle'),
          lte(gcJobs.nextRunAt, new Date()),
          others.length ? or(isNull(gcJobs.managementNodeUuid), notInArray(gcJobs.managementNodeUuid, others)) : undefined,
        ),
      )
      .orderBy(gcJobs.nextRunAt)
      .limit(limit);
    await Promise.all(due.map((j) => this.runJob(j.uuid)));
    return due.length;
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
    const gone = await this.db.delete(gcJobs).where(and(eq(gcJobs.status, 'Done'), lt(gcJobs.lastOpDate, before))).returning({ uuid: gcJobs.uuid });
    return gone.length;
  }

  /** Claims and runs one job; returns false when it was not Idle (done, running elsewhere, deleted). */
  async runJob(uuid: string): Promise<boolean> {
    const [job] = await this.db
      .update(gcJobs)
      .set({ status: 'Processing', managementNodeUuid: this.nodeUuid, attempts: sql`${gcJobs.attempts} + 1`, lastOpDate: new Date() })
      .where(and(eq(gcJobs.uuid, uuid), eq(gcJobs.status, 'Idle')))
      .returning();
    if (!job) return false;
    const runner = this.runners.get(job.runner);
    const controller = new AbortController();
    this.running.set(uuid, controller);
    let outcome: GcOutcome = 'retry';
    let error: unknown;
    try {
      if (!runner) throw new Error(`no runner ${job.runner} on this node`);
      const ctx = backgroundContext(`gc:${job.name}`, RUN_BUDGET_MS);
      ctx.signal = AbortSignal.any([ctx.signal, controller.signal]);
      outcome = await runInContext(ctx, () => runner.run(job.context, job, ctx.signal));
    } catch (e) {
      error = e;
    } finally {
      this.running.delete(uuid);
    }
    const now = new Date();
    const finished = outcome !== 'retry';
    await this.db
      .update(gcJobs)
      .set(
        finished
          ? { status: 'Done', result: outcome === 'done' ? 'Succeeded' : 'Cancelled', lastError: null, lastOpDate: now }
          : {
              status: 'Idle',
              nextRunAt: new Date(now.getTime() + job.intervalMs),
              lastError: error ? toApiError(error).error : null,
              lastOpDate: now,
            },
      )
      .where(and(eq(gcJobs.uuid, uuid), eq(gcJobs.status, 'Processing'), eq(gcJobs.managementNodeUuid, this.nodeUuid)));
    return true;
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
