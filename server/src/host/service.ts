// The host model shared by every host kind (simulated and KVM): the status machine (Connecting → Connected /
// Disconnected, an event on every change), connecting to the agent (for KVM hosts after deploying it over SSH),
// agent calls that fail fast on a host that is not Connected and carry the host agent's own secret, and CPU/memory
// capacity kept on the host row so that a reservation is one conditional UPDATE (never negative, never
// double-booked).
import { and, eq, gte, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { isUnreachable, type AgentPathOf, type AgentRequest, type AgentResponse } from '../agent-client/index.js';
import { step } from '../core/context.js';
import { ApiError, err, notFound, stateErr, toApiError } from '../core/errors.js';
import type { Tx } from '../db/index.js';
import { hosts } from '../db/schema/index.js';
import { credentialVault, newAgentSecret } from '../core/credentials.js';
import { DeployFailure, type AgentDeployService } from './deploy.js';
import { hostInventory, type HostRow } from './inventory.js';

export type { HostRow };
export type HostStatus = 'Connecting' | 'Connected' | 'Disconnected';
/** Work done for a host by other domains: after it connects (e.g. refresh local storage), before maintenance (move VMs). */
export type HostHook = (host: HostRow) => Promise<void>;

/** Port of a real kvm agent (upstream's KvmAgent.port). */
export const KVM_AGENT_PORT = 7070;

export interface ConnectOptions {
  /** Error code when connecting fails: HOST.1003 when adding, HOST.1002 when reconnecting. */
  errorCode: 'HOST.1003' | 'HOST.1002';
  /** Simulated hosts: the CPU count and memory the simulator should report. */
  simulatorCpuNum?: number;
  simulatorMemory?: number;
  /** KVM hosts: deploy (or re-check) the agent over SSH before connecting (AddKVMHost, ReconnectHost). */
  deploy?: boolean;
}

/** `Debian GNU/Linux 12 (bookworm)` → bookworm, `CentOS Linux 7 (Core)` → Core (upstream's os::release); else the name. */
export const osReleaseOf = (prettyName: string) => /\(([^)]+)\)\s*$/.exec(prettyName)?.[1] ?? prettyName;

export const hostLockKey = (uuid: string) => `host:${uuid}`;

const describe = (h: Pick<HostRow, 'uuid' | 'name'>) => `host[uuid:${h.uuid}, name:${h.name}]`;

export class HostService {
  private afterConnectHooks: HostHook[] = [];
  private maintenanceHooks: HostHook[] = [];

  constructor(
    private app: DomainContext,
    private deployer: AgentDeployService,
  ) {}

  async get(uuid: string): Promise<HostRow | undefined> {
    const [h] = await this.app.db.select().from(hosts).where(eq(hosts.uuid, uuid));
    return h;
  }

  async require(uuid: string): Promise<HostRow> {
    const h = await this.get(uuid);
    if (!h) throw notFound('HostVO', uuid);
    return h;
  }

  /** The host, or HOST.1010 (503) when it is not Connected: operations on it fail fast instead of timing out. */
  async requireConnected(uuid: string): Promise<HostRow> {
    const h = await this.require(uuid);
    if (h.status !== 'Connected') throw err('HOST.1010', `${describe(h)} is ${h.status}, not Connected`);
    return h;
  }

  /** Where the host's agent listens: the simulator for simulated hosts, else its own kvm agent. */
  agentUrlOf(h: HostRow): string {
    if (h.hypervisorType === 'Simulator') {
      if (!this.app.options.simulatorUrl) throw err('SYS.1006', 'no simulator agent is configured on this management node');
      return this.app.options.simulatorUrl;
    }
    return h.agentUrl ?? `http://${h.managementIp}:${KVM_AGENT_PORT}`;
  }

  /** The secret of the host's own agent (KVM hosts); undefined = the node's default agent secret (simulator). */
  agentSecretOf(h: HostRow): string | undefined {
    if (h.hypervisorType !== 'KVM') return undefined;
    return credentialVault(this.app).tryOpen(h.credential, describe(h))?.agentSecret;
  }

  /** Agent call options for the host: its uuid as target, its agent's secret. */
  private target(h: HostRow, timeoutMs?: number) {
    return { targetUuid: h.uuid, secret: this.agentSecretOf(h), timeoutMs };
  }

  /**
   * An agent command for a Connected host. An unreachable agent marks the host Disconnected and fails with
   * HOST.1010 wrapping the cause; an agent that answers `success:false` fails with its own error (SYS.1006).
   */
  async call<P extends AgentPathOf<'host'>>(hostUuid: string, path: P, body: AgentRequest<P>, opts: { timeoutMs?: number } = {}): Promise<AgentResponse<P>> {
    return this.callOn(await this.requireConnected(hostUuid), path, body, opts);
  }

  /**
   * `call` for a host row the caller already holds and whose status it has just checked (e.g. the row the VM
   * allocation reserved capacity on, which only picks Connected hosts): no second read of the host.
   */
  async callOn<P extends AgentPathOf<'host'>>(h: HostRow, path: P, body: AgentRequest<P>, opts: { timeoutMs?: number } = {}): Promise<AgentResponse<P>> {
    try {
      return await this.app.agents.call(this.agentUrlOf(h), path, body, this.target(h, opts.timeoutMs));
    } catch (e) {
      if (!isUnreachable(e)) throw e;
      await this.setStatus(h.uuid, 'Disconnected', ['Connected']);
      throw err('HOST.1010', `${describe(h)} is unreachable, marked Disconnected`, (e as ApiError).error);
    }
  }

  /**
   * An agent command that leaves the host's status alone whatever happens (background reads such as reconciliation's
   * `/vm/vmsync`: a slow answer under load must not take the host out of placement; pings decide the status).
   */
  async query<P extends AgentPathOf<'host'>>(h: HostRow, path: P, body: AgentRequest<P>, opts: { timeoutMs?: number } = {}): Promise<AgentResponse<P>> {
    return this.app.agents.call(this.agentUrlOf(h), path, body, this.target(h, opts.timeoutMs));
  }

  /** Changes the status (only from `from` when given); emits `host.status` when it changed. */
  async setStatus(uuid: string, to: HostStatus, from?: HostStatus[]): Promise<boolean> {
    const old = await this.app.db.transaction(async (tx) => {
      const [h] = await tx.select({ status: hosts.status }).from(hosts).where(eq(hosts.uuid, uuid)).for('update');
      if (!h || h.status === to || (from && !from.includes(h.status as HostStatus))) return undefined;
      await tx.update(hosts).set({ status: to, lastOpDate: new Date() }).where(eq(hosts.uuid, uuid));
      return h.status;
    });
    if (old === undefined) return false;
    this.app.events.emit('host.status', { hostUuid: uuid, oldStatus: old, newStatus: to });
    return true;
  }

  afterConnect(hook: HostHook): void {
    this.afterConnectHooks.push(hook);
  }

  beforeMaintenance(hook: HostHook): void {
    this.maintenanceHooks.push(hook);
  }

  /**
   * Connects (or reconnects) to the host's agent: Connecting → (KVM, `opts.deploy`: deploy the agent over SSH) →
   * `/host/connect` → `/host/capacity` → Connected, then the after-connect hooks. Any failure leaves the host
   * Disconnected; a failed deploy fails with the deployer's HOST.1003, anything else with `opts.errorCode`.
   */
  async connect(uuid: string, opts: ConnectOptions): Promise<HostRow> {
    return this.app.locks.withLock(hostLockKey(uuid), async () => {
      let h = await this.require(uuid);
      await this.setStatus(uuid, 'Connecting');
      try {
        if (opts.deploy && h.hypervisorType === 'KVM') h = await this.deployAgent(h);
        await step(`connect ${describe(h)}`, async () => {
          const url = this.agentUrlOf(h);
          const target = this.target(h);
          const body: AgentRequest<'/host/connect'> = { hostUuid: uuid };
          if (h.hypervisorType === 'Simulator') {
            // The simulator forgets hosts when it restarts: tell it again what this host looks like.
            const cpuNum = opts.simulatorCpuNum ?? (h.cpuNum > 0 ? h.cpuNum : undefined);
            const memory = opts.simulatorMemory ?? (h.totalMemoryCapacity > 0 ? h.totalMemoryCapacity : undefined);
            if (cpuNum !== undefined) body.simulatorCpuNum = cpuNum;
            if (memory !== undefined) body.simulatorMemory = memory;
          }
          await this.app.agents.call(url, '/host/connect', body, target);
          const cap = await this.app.agents.call(url, '/host/capacity', {}, target);
          await this.applyCapacity(uuid, cap.cpuNum ?? 0, cap.totalMemory ?? 0);
        });
      } catch (e) {
        await this.setStatus(uuid, 'Disconnected');
        if (e instanceof DeployFailure) throw e; // already says which task failed where, and how
        const failure = toApiError(e);
        if (failure.error.code === 'SYS.1001') throw failure; // the API ran out of time: say that, naming the step
        const cause = failure.error;
        throw err(opts.errorCode, `failed to connect ${describe(h)}: ${cause.details ?? cause.description}`, cause);
      }
      await this.setStatus(uuid, 'Connected');
      const connected = await this.require(uuid);
      for (const hook of this.afterConnectHooks) {
        // A hook is a refresh (e.g. storage capacity); its failure must not undo a good connection.
        await hook(connected).catch((e) => console.error(`[host] after-connect hook of ${describe(h)} failed:`, toApiError(e).message));
      }
      return connected;
    });
  }

  /**
   * Deploys the kvm agent on a KVM host with the settings of `kvm/agent.*` and the host's own secret (made now if
   * it has none), recording the host key seen on first contact, the agent's URL and the OS facts.
   */
  private async deployAgent(h: HostRow): Promise<HostRow> {
    const vault = credentialVault(this.app);
    const username = h.username;
    if (!h.credential || !username) throw err('SYS.1006', `${describe(h)} has no SSH credentials`);
    const credentials = vault.open(h.credential, describe(h));
    let agentSecret = credentials.agentSecret;
    if (!agentSecret) {
      // Rows sealed before agents had secrets of their own: one now, stored before the agent is told.
      agentSecret = newAgentSecret();
      const credential = vault.seal({ ...credentials, agentSecret });
      await this.app.db.update(hosts).set({ credential }).where(eq(hosts.uuid, h.uuid));
      h = { ...h, credential };
    }
    const gc = this.app.globalConfig;
    const r = await this.deployer.deploy({
      resourceUuid: h.uuid,
      resourceType: 'HostVO',
      describe: describe(h),
      kind: 'kvm',
      address: h.managementIp,
      sshPort: h.sshPort ?? 22,
      username,
      credentials,
      agentSecret,
      knownHostKey: h.hostKey ?? undefined,
      installRoot: gc.get('kvm', 'agent.installRoot'),
      agentPort: gc.getNumber('kvm', 'agent.port'),
      backend: gc.get('kvm', 'agent.backend'),
    });
    const [row] = await this.app.db
      .update(hosts)
      .set({
        hostKey: h.hostKey ?? r.hostKey,
        agentUrl: r.agentUrl,
        architecture: r.platform.arch,
        osDistribution: r.platform.osId,
        osRelease: osReleaseOf(r.platform.prettyName),
        osVersion: r.platform.osVersion,
      })
      .where(eq(hosts.uuid, h.uuid))
      .returning();
    return row ?? h;
  }

  /**
   * Capacity from the agent's figures: total vCPUs = physical CPUs × `host/cpu.overProvisioning.ratio`. What VMs
   * already hold (total − available) stays held, in the same UPDATE, so a reconnect never frees or double-counts.
   */
  private async applyCapacity(uuid: string, cpuNum: number, memory: number): Promise<void> {
    const totalCpu = cpuNum * this.app.globalConfig.getNumber('host', 'cpu.overProvisioning.ratio');
    await this.app.db
      .update(hosts)
      .set({
        cpuNum,
        totalCpuCapacity: totalCpu,
        availableCpuCapacity: sql`GREATEST(0, ${totalCpu}::bigint - (${hosts.totalCpuCapacity} - ${hosts.availableCpuCapacity}))`,
        totalMemoryCapacity: memory,
        availableMemoryCapacity: sql`GREATEST(0, ${memory}::bigint - (${hosts.totalMemoryCapacity} - ${hosts.availableMemoryCapacity}))`,
      })
      .where(eq(hosts.uuid, uuid));
  }

  /** A changed `host/cpu.overProvisioning.ratio` applies to every host at once; what VMs hold stays held. */
  async applyCpuRatio(): Promise<void> {
    const ratio = this.app.globalConfig.getNumber('host', 'cpu.overProvisioning.ratio');
    await this.app.db.update(hosts).set({
      totalCpuCapacity: sql`${hosts.cpuNum} * ${ratio}::bigint`,
      availableCpuCapacity: sql`GREATEST(0, ${hosts.cpuNum} * ${ratio}::bigint - (${hosts.totalCpuCapacity} - ${hosts.availableCpuCapacity}))`,
    });
  }

  /** Takes `cpu` vCPUs and `memory` bytes from the host if it has them; false (nothing taken) otherwise. */
  async reserveCapacity(tx: Tx, hostUuid: string, cpu: number, memory: number): Promise<boolean> {
    const rows = await tx
      .update(hosts)
      .set(reservation(cpu, memory))
      // The allocation's state filters again on the locked row: a host being deleted (or disabled) meanwhile is not taken.
      .where(
        and(
          eq(hosts.uuid, hostUuid),
          eq(hosts.state, 'Enabled'),
          eq(hosts.status, 'Connected'),
          gte(hosts.availableCpuCapacity, cpu),
          gte(hosts.availableMemoryCapacity, memory),
        ),
      )
      .returning({ uuid: hosts.uuid });
    return rows.length === 1;
  }

  /** Gives back what reserveCapacity took (never above the total). */
  async releaseCapacity(tx: Tx, hostUuid: string, cpu: number, memory: number): Promise<void> {
    await tx
      .update(hosts)
      .set({
        availableCpuCapacity: sql`LEAST(${hosts.totalCpuCapacity}, ${hosts.availableCpuCapacity} + ${cpu}::bigint)`,
        availableMemoryCapacity: sql`LEAST(${hosts.totalMemoryCapacity}, ${hosts.availableMemoryCapacity} + ${memory}::bigint)`,
        reservedVmCount: sql`GREATEST(0, ${hosts.reservedVmCount} - 1)`,
      })
      .where(eq(hosts.uuid, hostUuid));
  }

  async inventories(rows: HostRow[]): Promise<object[]> {
    return rows.map(hostInventory);
  }

  /**
   * One ping (the tracker's): a failure marks a Connected host Disconnected; a success on a Disconnected host, or
   * an agent that no longer knows the host (restarted), reconnects it.
   */
  async ping(uuid: string): Promise<void> {
    const h = await this.get(uuid);
    if (!h || h.status === 'Connecting') return;
    let reply: AgentResponse<'/host/ping'>;
    try {
      const timeoutMs = this.app.globalConfig.getMs('host', 'ping.timeout');
      reply = await this.app.agents.call(this.agentUrlOf(h), '/host/ping', {}, this.target(h, timeoutMs));
    } catch {
      if (h.status === 'Connected') await this.setStatus(uuid, 'Disconnected', ['Connected']);
      return;
    }
    const needsReconnect = h.status === 'Disconnected' || reply.hostUuid !== uuid;
    if (!needsReconnect || !this.app.globalConfig.getBool('host', 'connection.autoReconnectOnError')) return;
    await this.connect(uuid, { errorCode: 'HOST.1002' }).catch((e) =>
      console.error(`[host] reconnecting ${describe(h)} after a ping failed:`, toApiError(e).message),
    );
  }

  /** enable → Enabled, disable → Disabled, maintain → PreMaintenance, the maintenance hooks, then Maintenance. */
  async changeState(uuid: string, event: 'enable' | 'disable' | 'maintain'): Promise<HostRow> {
    return this.app.locks.withLock(hostLockKey(uuid), async () => {
      const h = await this.require(uuid);
      const set = (state: string) => this.app.db.update(hosts).set({ state, lastOpDate: new Date() }).where(eq(hosts.uuid, uuid)).returning();
      if (event !== 'maintain') return (await set(event === 'enable' ? 'Enabled' : 'Disabled'))[0];
      if (h.state === 'Maintenance') return h;
      if (h.status !== 'Connected') throw stateErrorNotConnected(h);
      await set('PreMaintenance');
      try {
        for (const hook of this.maintenanceHooks) await hook({ ...h, state: 'PreMaintenance' });
      } catch (e) {
        await set(h.state);
        throw e;
      }
      return (await set('Maintenance'))[0];
    });
  }
}

/** The SET of a CPU/memory reservation for one VM (also used by the VM allocator's one-statement reservation). */
export const reservation = (cpu: number, memory: number) => ({
  availableCpuCapacity: sql`${hosts.availableCpuCapacity} - ${cpu}::bigint`,
  availableMemoryCapacity: sql`${hosts.availableMemoryCapacity} - ${memory}::bigint`,
  reservedVmCount: sql`${hosts.reservedVmCount} + 1`,
});

/** 409 naming the status: maintenance migrates VMs away, which needs the host's agent. */
export const stateErrorNotConnected = (h: HostRow): ApiError =>
  stateErr('SYS.1005', `cannot maintain ${describe(h)}: its status is ${h.status}, not Connected`);
