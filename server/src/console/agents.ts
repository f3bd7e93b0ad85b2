// Console proxy agents: one per management node (its uuid is the node's), run by that node (launch.ts), with a row
// every node can read. Status: Connecting (being started) → Connected (answered `/console/connect` and a ping)
// → Disconnected (a ping failed, the process died, or starting failed); a successful ping brings a Disconnected
// agent back. Every `console/agent.ping.interval` the node pings its own agent. Only the owning node starts or
// stops its agent; another node asks it to (ReconnectConsoleProxyAgent, UpdateConsoleProxyAgent) by incrementing
// `reconnectRequested` on the row, which the owner notices within a second.
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { and, eq, lt, or, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { AgentPathOf, AgentRequest, AgentResponse } from '../agent-client/index.js';
import { remainingMs, step } from '../core/context.js';
import { err, errorCode, notFound, opErr, toApiError, type ErrorCode } from '../core/errors.js';
import { consoleProxies, consoleProxyAgents } from '../db/schema/index.js';
import { credentialVault } from '../core/credentials.js';
import type { AgentRow } from './inventory.js';
import { deployConsoleAgent, spawnConsoleAgent, type AgentRuntime, type DeployMode } from './launch.js';

/** How long a ping may take at most (less when the interval is shorter). */
const PING_TIMEOUT_MS = 10_000;
/** Console proxy rows this long past their expiry (or inactive this long) are deleted. */
const PROXY_ROW_RETENTION_MS = 60 * 60_000;
const PURGE_INTERVAL_MS = 10 * 60_000;
/** How long a stopping node waits for an agent start in progress. */
const CLOSE_WAIT_MS = 5_000;
/** How long a node waits for another node to restart its agent (within the API's own deadline). */
const REMOTE_RECONNECT_MAX_MS = 120_000;

/** The address clients and other nodes use for this node: its listen address, else its first external IPv4. */
export function managementIpOf(host: string | undefined): string {
  if (host && !['0.0.0.0', '::', '', 'localhost'].includes(host)) return host;
  if (host === 'localhost') return '127.0.0.1';
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export class ConsoleProxyAgents {
  private runtime?: AgentRuntime;
  private queue: Promise<unknown> = Promise.resolve();
  private started = false;
  private closed = false;
  private lastPing = 0;
  private lastPurge = 0;

  constructor(private readonly app: DomainContext) {}

  /** This node's agent uuid (= the node's uuid). */
  get ownUuid(): string {
    return this.app.nodeUuid;
  }

  /** The spawned agent's process id (spawn mode), e.g. for operators and tests. */
  get pid(): number | undefined {
    return this.runtime?.pid;
  }

  async get(uuid: string): Promise<AgentRow | undefined> {
    const [row] = await this.app.db.select().from(consoleProxyAgents).where(eq(consoleProxyAgents.uuid, uuid));
    return row;
  }

  async require(uuid: string): Promise<AgentRow> {
    const row = await this.get(uuid);
    if (!row) throw notFound('ConsoleProxyAgentVO', uuid);
    return row;
  }

  list(): Promise<AgentRow[]> {
    return this.app.db.select().from(consoleProxyAgents);
  }

  /** A spawned agent started on the first console request (AppOptions.consoleAgentOnDemand), not at boot. */
  private get onDemand(): boolean {
    return !!this.app.options.consoleAgentOnDemand && this.app.globalConfig.get('console', 'agent.deploy.mode') === 'spawn';
  }

  /** This node's agent, Connected (started now if it starts on demand), or SYS.1006 saying what it is. */
  async requireOwnConnected(): Promise<AgentRow> {
    let row = await this.get(this.ownUuid);
    if (!row) throw opErr(`management node[uuid:${this.ownUuid}] has no console proxy agent yet`);
    if (this.onDemand && !this.runtime && this.started) {
      // Queued with the other starts: of concurrent first requests, one starts it and the others find it Connected.
      row = await this.serial(async () => {
        const now = await this.require(this.ownUuid);
        return now.status === 'Connected' && this.runtime ? now : this.connectNow();
      });
    }
    if (row.status !== 'Connected') {
      const why = (row.lastError as ErrorCode | null)?.details;
      throw opErr(
        `the console proxy agent of management node[uuid:${row.uuid}] is ${row.status}${why ? ` (${why})` : ''}; ReconnectConsoleProxyAgent restarts it`,
      );
    }
    return row;
  }

  // ------------------------------------------------------------------ calls to any node's agent

  /** The agent's secret from its row (sealed with the node's credential key: every node can open it). */
  private secretOf(row: AgentRow): string {
    const secret = row.secret
      ? credentialVault(this.app).open(row.secret, `the console proxy agent of management node[uuid:${row.uuid}]`).agentSecret
      : undefined;
    if (!secret) throw opErr(`the console proxy agent of management node[uuid:${row.uuid}] has not started`);
    return secret;
  }

  private seal(secret: string): string {
    return credentialVault(this.app).seal({ agentSecret: secret });
  }

  /**
   * A command to an agent (this node's or another's, through the address and secret on its row). This node's
   * agent not answering turns it Disconnected.
   */
  async call<P extends AgentPathOf<'console'>>(row: AgentRow, path: P, body: AgentRequest<P>, timeoutMs?: number): Promise<AgentResponse<P>> {
    if (!row.agentUrl) throw opErr(`the console proxy agent of management node[uuid:${row.uuid}] has not started`);
    const secret = this.secretOf(row);
    try {
      return await this.app.agents.call(row.agentUrl, path, body, { secret, targetUuid: row.uuid, timeoutMs });
    } catch (e) {
      const code = toApiError(e).error.code;
      if (row.uuid === this.ownUuid && code === 'SYS.1015') {
        await this.setStatus('Disconnected', toApiError(e).error, ['Connected']);
      }
      throw e;
    }
  }

  // ------------------------------------------------------------------ this node's agent

  /** The node is serving: its row, then its agent (in the background; the status tells how it went). */
  async start(): Promise<void> {
    const cfg = this.app.globalConfig;
    await this.app.db
      .insert(consoleProxyAgents)
      .values({
        uuid: this.ownUuid,
        description: `console proxy agent of management node ${hostname()}`,
        managementIp: managementIpOf(this.app.options.host ?? '127.0.0.1'),
        consoleProxyPort: cfg.getNumber('console', 'proxy.port'),
        deployMode: cfg.get('console', 'agent.deploy.mode'),
        status: 'Connecting',
      })
      .onConflictDoNothing();
    this.started = true;
    if (this.onDemand) {
      // Nothing runs until the first console request; what an earlier run left on the row is not true any more.
      await this.setStatus(
        'Disconnected',
        errorCode('SYS.1006', 'not started yet: this management node starts its console proxy agent on the first console request'),
      );
      return;
    }
    this.connect().catch((e) => {
      if (!this.closed) console.warn(`[console] ${toApiError(e).message}`);
    });
  }

  /** (Re)starts this node's agent and connects to it; one at a time, with the pings. */
  connect(): Promise<AgentRow> {
    return this.serial(() => this.connectNow());
  }

  /** Node stopping: no more restarts; the spawned agent stops (one being started stops once it is up). */
  async close(): Promise<void> {
    this.closed = true;
    await this.stopRuntime();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.queue, new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    await this.stopRuntime();
  }

  /** Once a second: restart requests from other nodes, then the ping when it is due. */
  async tick(): Promise<void> {
    if (!this.started || this.closed) return;
    const row = await this.get(this.ownUuid);
    if (!row) return;
    if (row.reconnectRequested > row.reconnectHandled) {
      // Handled and Connecting in one update: a requester never mistakes the old status for the answer.
      await this.app.db
        .update(consoleProxyAgents)
        .set({ reconnectHandled: row.reconnectRequested, status: 'Connecting', lastOpDate: new Date() })
        .where(eq(consoleProxyAgents.uuid, this.ownUuid));
      await this.connect().catch((e) => console.warn(`[console] ${toApiError(e).message}`));
      return;
    }
    const interval = this.app.globalConfig.getMs('console', 'agent.ping.interval');
    if (Date.now() - this.lastPing >= interval) {
      this.lastPing = Date.now();
      await this.serial(() => this.pingNow(Math.min(PING_TIMEOUT_MS, interval)));
    }
    if (Date.now() - this.lastPurge >= PURGE_INTERVAL_MS) {
      this.lastPurge = Date.now();
      const before = new Date(Date.now() - PROXY_ROW_RETENTION_MS);
      await this.app.db
        .delete(consoleProxies)
        .where(or(lt(consoleProxies.expiredDate, before), and(eq(consoleProxies.status, 'Inactive'), lt(consoleProxies.lastOpDate, before))));
    }
  }

  /**
   * Asks the owning node to restart its agent and waits for the outcome: true once Connected, else the reason.
   * (This node's own agent is restarted directly.)
   */
  async reconnect(uuid: string): Promise<true | ErrorCode> {
    try {
      if (uuid === this.ownUuid) {
        await this.connect();
        return true;
      }
      const [req] = await this.app.db
        .update(consoleProxyAgents)
        .set({ reconnectRequested: sql`${consoleProxyAgents.reconnectRequested} + 1` })
        .where(eq(consoleProxyAgents.uuid, uuid))
        .returning({ generation: consoleProxyAgents.reconnectRequested });
      if (!req) return errorCode('SYS.1007', `console proxy agent[uuid:${uuid}] not found`);
      return await step(
        `wait for management node[uuid:${uuid}] to restart its console proxy agent`,
        async () => {
          for (;;) {
            const row = await this.get(uuid);
            if (!row) return errorCode('SYS.1006', `management node[uuid:${uuid}] left while restarting its console proxy agent`);
            if (row.reconnectHandled >= req.generation && row.status !== 'Connecting') {
              return row.status === 'Connected'
                ? true
                : ((row.lastError as ErrorCode | null) ?? errorCode('SYS.1006', `console proxy agent[uuid:${uuid}] is ${row.status}`));
            }
            await new Promise((r) => setTimeout(r, 200));
          }
        },
        { timeoutMs: Math.min(remainingMs(), REMOTE_RECONNECT_MAX_MS) },
      );
    } catch (e) {
      return toApiError(e).error;
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async update(values: Partial<typeof consoleProxyAgents.$inferInsert>): Promise<void> {
    await this.app.db
      .update(consoleProxyAgents)
      .set({ ...values, lastOpDate: new Date() })
      .where(eq(consoleProxyAgents.uuid, this.ownUuid));
  }

  /** Sets this node's agent's status (only from `from` when given). */
  private async setStatus(status: string, lastError: ErrorCode | null, from?: string[]): Promise<void> {
    const cond = from
      ? and(eq(consoleProxyAgents.uuid, this.ownUuid), or(...from.map((s) => eq(consoleProxyAgents.status, s))))
      : eq(consoleProxyAgents.uuid, this.ownUuid);
    await this.app.db.update(consoleProxyAgents).set({ status, lastError, lastOpDate: new Date() }).where(cond);
  }

  private async stopRuntime(): Promise<void> {
    const rt = this.runtime;
    this.runtime = undefined;
    await rt?.stop();
  }

  private async connectNow(): Promise<AgentRow> {
    if (this.closed) throw opErr('the management node is stopping');
    const own = this.ownUuid;
    const row = await this.require(own);
    const cfg = this.app.globalConfig;
    const mode = cfg.get('console', 'agent.deploy.mode') as DeployMode;
    await this.update({ status: 'Connecting', lastError: null, deployMode: mode });
    await this.stopRuntime();
    // Whatever tokens the old agent held are gone with it.
    await this.app.db
      .update(consoleProxies)
      .set({ status: 'Inactive', lastOpDate: new Date() })
      .where(and(eq(consoleProxies.agentUuid, own), eq(consoleProxies.status, 'Active')));
    try {
      const rt = await step(`start the console proxy agent of management node[uuid:${own}] (${mode})`, async (signal) => {
        if (mode === 'ssh') {
          // The same secret across redeploys: an unchanged config does not restart a running agent.
          const kept = row.deployMode === 'ssh' ? credentialVault(this.app).tryOpen(row.secret, 'console proxy agent')?.agentSecret : undefined;
          const secret = kept ?? randomBytes(24).toString('hex');
          return deployConsoleAgent({
            secret,
            host: cfg.get('console', 'agent.deploy.sshHost'),
            sshPort: cfg.getNumber('console', 'agent.deploy.sshPort'),
            username: cfg.get('console', 'agent.deploy.username'),
            privateKeyFile: cfg.get('console', 'agent.deploy.privateKeyFile'),
            knownHostKey: row.deployMode === 'ssh' ? (row.hostKey ?? undefined) : undefined,
            installRoot: cfg.get('console', 'agent.deploy.installRoot'),
            agentPort: cfg.getNumber('console', 'agent.deploy.agentPort'),
            signal,
            timeoutMs: remainingMs(),
          });
        }
        return spawnConsoleAgent({
          secret: randomBytes(24).toString('hex'),
          host: this.app.options.host ?? '127.0.0.1',
          proxyPort: row.overriddenPort ?? cfg.getNumber('console', 'proxy.port'),
          logFile: join(this.app.options.dataDir, 'console-proxy-agent.log'),
        });
      });
      if (this.closed) {
        await rt.stop();
        throw opErr('the management node is stopping');
      }
      this.runtime = rt;
      this.watch(rt);
      // Recorded at once: even if connecting fails below, pings can find the agent and bring it back.
      await this.update({ agentUrl: rt.url, secret: this.seal(rt.secret), hostKey: rt.hostKey ?? row.hostKey });
      const fresh = await this.require(own);
      await this.call(fresh, '/console/connect', { managementNodeUuid: own, managementIp: row.managementIp }, 30_000);
      const pong = await this.call(fresh, '/console/ping', {}, PING_TIMEOUT_MS);
      await this.update({ status: 'Connected', lastError: null, scheme: pong.scheme ?? 'ws', consoleProxyPort: pong.proxyPort ?? fresh.consoleProxyPort });
      return this.require(own);
    } catch (e) {
      const cause = toApiError(e).error;
      await this.setStatus('Disconnected', cause).catch(() => undefined);
      throw err('SYS.1006', `the console proxy agent of management node[uuid:${own}] failed to connect: ${cause.details ?? cause.description}`, cause);
    }
  }

  /** A spawned agent that dies turns Disconnected at once (not only at the next ping). */
  private watch(rt: AgentRuntime): void {
    rt.exited?.then((how) => {
      if (this.closed || this.runtime !== rt) return;
      void this.serial(async () => {
        if (this.closed || this.runtime !== rt) return;
        this.runtime = undefined;
        console.warn(`[console] the console proxy agent (pid ${rt.pid}) ${how}`);
        await this.setStatus('Disconnected', errorCode('SYS.1006', `the console proxy agent process ${how}`));
      }).catch(() => undefined);
    });
  }

  private async pingNow(timeoutMs: number): Promise<void> {
    const row = await this.get(this.ownUuid);
    if (!row || row.status === 'Connecting' || !row.agentUrl) return;
    if (this.onDemand && !this.runtime) return; // not started (yet, or since it exited): nothing to ping
    try {
      const pong = await this.call(row, '/console/ping', {}, timeoutMs);
      if (row.status !== 'Connected') {
        await this.call(row, '/console/connect', { managementNodeUuid: row.uuid, managementIp: row.managementIp }, timeoutMs);
      }
      if (row.status !== 'Connected' || (pong.proxyPort !== undefined && pong.proxyPort !== row.consoleProxyPort)) {
        await this.update({
          status: 'Connected',
          lastError: null,
          consoleProxyPort: pong.proxyPort ?? row.consoleProxyPort,
          scheme: pong.scheme ?? row.scheme,
        });
      }
    } catch (e) {
      if (row.status !== 'Disconnected') await this.setStatus('Disconnected', toApiError(e).error);
    }
  }
}
