// Agent deploys from the management server: the SSH deployer (agents/src/deploy) run for a KVM host or an SFTP
// backup storage, bounded by `kvm/deploy.parallelismDegree` per management node, inside the API's deadline, with
// its task log stored per resource (QueryHostDeployLog) and its failure turned into the job's error.
//
// The log is the `tasks` deployAgent returns, stored when the deploy ends, not lines POSTed to a logging URL:
// README.md (Deploy logs) says why.
import { and, eq, inArray, notInArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { currentContext, remainingMs, reportProgress, step, timeoutError } from '../core/context.js';
import { formatDate } from '../core/dates.js';
import { ApiError } from '../core/errors.js';
import { newUuid } from '../core/ids.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { hostDeployLogs } from '../db/schema/index.js';
import { DeployError, deployAgent, type DeployKind, type DeployResult, type TaskLog } from '../../../agents/src/deploy/index.js';
import type { SshCredentials } from '../core/credentials.js';

export type DeployLogRow = typeof hostDeployLogs.$inferSelect;

/** Runs kept per resource: older ones are pruned when a new one is stored. */
export const DEPLOY_RUNS_KEPT = 20;

export interface DeployTarget {
  resourceUuid: string;
  resourceType: 'HostVO' | 'BackupStorageVO';
  /** `host[uuid:…, name:…]`, for step names and errors. */
  describe: string;
  kind: DeployKind;
  /** Where to ssh to (managementIp, backup storage hostname). */
  address: string;
  sshPort: number;
  username: string;
  credentials: SshCredentials;
  agentSecret: string;
  /** Recorded on the first deploy; a different key is refused. */
  knownHostKey?: string;
  installRoot: string;
  agentPort: number;
  backend?: string;
  storageRoot?: string;
}

/** A deploy that failed: the deployer's HOST.1003 (task, host, exit code, stderr tail; cause SYS.1006). */
export class DeployFailure extends ApiError {}

/** A counting semaphore whose limit is read at every acquire (a changed setting applies at once). */
export class Semaphore {
  private active = 0;
  private waiters: Array<{ wake: () => void }> = [];

  constructor(private readonly limit: () => number) {}

  get running(): number {
    return this.active;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.limit()) {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          wake: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(signal!.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(waiter);
      });
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.wakeNext();
    };
  }

  private wakeNext(): void {
    while (this.waiters.length && this.active < this.limit()) {
      this.active++;
      this.waiters.shift()!.wake();
    }
  }
}

export class AgentDeployService {
  readonly slots: Semaphore;

  constructor(private readonly app: DomainContext) {
    this.slots = new Semaphore(() => app.globalConfig.getNumber('kvm', 'deploy.parallelismDegree'));
  }

  /**
   * Deploys (or re-checks) the agent of `t`, within the caller's deadline. The task log is stored either way; a
   * failure throws DeployFailure (HOST.1003), or SYS.1001 naming the step when the API's time ran out.
   */
  async deploy(t: DeployTarget): Promise<DeployResult> {
    const name = `deploy the ${t.kind} agent on ${t.describe}`;
    return step(name, async (signal) => {
      const release = await this.slots.acquire(signal);
      const deployUuid = newUuid();
      const started = Date.now();
      try {
        const result = await deployAgent({
          kind: t.kind,
          host: t.address,
          port: t.sshPort,
          username: t.username,
          password: t.credentials.password,
          privateKey: t.credentials.privateKey,
          knownHostKey: t.knownHostKey,
          installRoot: t.installRoot,
          agentPort: t.agentPort,
          backend: t.backend,
          storageRoot: t.storageRoot,
          secret: t.agentSecret,
          managementUrl: this.app.url ? `${this.app.url}/zstack` : undefined,
          // Each task as it starts is the job's progress (its poll shows it).
          onTask: (task) => reportProgress({ step: `deploy/${task.name}`, stepsDone: task.index, stepsTotal: task.total }),
          signal,
          timeoutMs: remainingMs(),
        });
        await this.storeLog(t, deployUuid, started, result.tasks);
        return result;
      } catch (e) {
        if (!(e instanceof DeployError)) throw e;
        await this.storeLog(t, deployUuid, started, e.tasks).catch((x) => console.error(`[deploy] storing the log of ${t.describe}:`, x));
        const ctx = currentContext();
        if (e.error.cause?.code === 'SYS.1001' && ctx) throw timeoutError(ctx, `${name} (task ${e.task})`);
        throw new DeployFailure(e.error);
      } finally {
        release();
      }
    });
  }

  /** The run's lines in one INSERT, timed on the deployer's clock; then runs beyond the last DEPLOY_RUNS_KEPT go. */
  async storeLog(t: DeployTarget, deployUuid: string, started: number, tasks: TaskLog[]): Promise<void> {
    if (tasks.length === 0) return;
    let elapsed = 0;
    const rows = tasks.map((line) => {
      if (line.status !== 'start') elapsed += line.durationMs;
      return {
        resourceUuid: t.resourceUuid,
        resourceType: t.resourceType,
        deployUuid,
        agentKind: t.kind,
        host: line.host,
        task: line.task,
        status: line.status,
        level: line.level,
        details: line.details,
        durationMs: Math.round(line.durationMs),
        createDate: new Date(started + elapsed),
      };
    });
    const { db } = this.app;
    await db.insert(hostDeployLogs).values(rows);
    const recent = db
      .select({ deployUuid: hostDeployLogs.deployUuid })
      .from(hostDeployLogs)
      .where(eq(hostDeployLogs.resourceUuid, t.resourceUuid))
      .groupBy(hostDeployLogs.deployUuid)
      .orderBy(sql`max(${hostDeployLogs.id}) desc`)
      .limit(DEPLOY_RUNS_KEPT);
    await db.delete(hostDeployLogs).where(and(eq(hostDeployLogs.resourceUuid, t.resourceUuid), notInArray(hostDeployLogs.deployUuid, recent)));
  }

  /** The logs of deleted hosts / backup storage go with them. */
  async deleteLogs(resourceUuids: string[]): Promise<void> {
    if (resourceUuids.length) await this.app.db.delete(hostDeployLogs).where(inArray(hostDeployLogs.resourceUuid, resourceUuids));
  }
}

export const deployLogInventory = (r: DeployLogRow) => ({
  id: r.id,
  resourceUuid: r.resourceUuid,
  resourceType: r.resourceType as 'HostVO' | 'BackupStorageVO',
  deployUuid: r.deployUuid,
  agentKind: r.agentKind as DeployKind,
  host: r.host,
  task: r.task as TaskLog['task'],
  status: r.status as TaskLog['status'],
  level: r.level as TaskLog['level'],
  details: r.details,
  durationMs: r.durationMs,
  createDate: formatDate(r.createDate)!,
});

export const hostDeployLogDescriptor: InventoryDescriptor<DeployLogRow> = {
  name: 'HostDeployLogInventory',
  table: hostDeployLogs,
  fields: fieldsFromTable(hostDeployLogs),
  // resource_uuid is a host or a backup storage: no foreign key, and 1.1's name.
  expand: { kvmHost: { inventory: 'HostInventory', localKey: 'resourceUuid', remoteKey: 'uuid' } },
  defaultSort: 'id',
  toInventories: async (rows) => rows.map(deployLogInventory),
};
