// Console access (zstack-internals.md §3.2, the later upstream design): RequestConsoleAccess asks the VM's host
// where its VNC server listens and this node's console proxy agent for a token bound to the VM; tokens are revoked
// when the VM stops, migrates or is destroyed. One row per token (console_proxies) so that an unused token can be
// handed out again to the session that asked for it, and so that any node can revoke it.
import { and, desc, eq, inArray } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { backgroundContext, runInContext, step } from '../core/context.js';
import { opErr, toApiError } from '../core/errors.js';
import { newUuid } from '../core/ids.js';
import { consoleProxies, consoleProxyAgents } from '../db/schema/index.js';
import { hostCall } from '../vm/index.js';
import type { VmRow } from '../vm/index.js';
import { vmLockKey } from '../vm/index.js';
import { notInStateErr } from '../vm/index.js';
import type { ConsoleProxyAgents } from './agents.js';
import type { AgentRow, ConsoleProxyRow } from './inventory.js';

export const consoleLockKey = (vmUuid: string) => `console-vm:${vmUuid}`;

/** VM states in which its console stays open; any other state revokes the VM's tokens. */
const CONSOLE_STATES = new Set(['Running', 'Rebooting', 'Paused', 'Pausing', 'Resuming']);

/**
 * The address clients are given for an agent's WebSocket listener: its overridden IP, else where it runs (the
 * management node for a spawned agent, the machine it was deployed on in ssh mode).
 */
export function advertisedHostname(agent: AgentRow): string {
  if (agent.consoleProxyOverriddenIp) return agent.consoleProxyOverriddenIp;
  if (agent.deployMode === 'ssh' && agent.agentUrl) return new URL(agent.agentUrl).hostname.replace(/^\[|\]$/g, '');
  return agent.managementIp;
}

export class ConsoleService {
  constructor(
    private readonly app: DomainContext,
    readonly agents: ConsoleProxyAgents,
  ) {}

  /** VM.1000 (409) unless the VM is Running. */
  requireRunning(vm: VmRow): void {
    if (vm.state !== 'Running') throw notInStateErr(vm.state, 'RequestConsoleAccess', ['Running']);
  }

  /**
   * A console path to the VM for `sessionUuid`: an unused, unexpired token this session got before for the VM on
   * the same host and proxy address, else a new one. Under the VM's lock: the VM cannot stop or move meanwhile.
   */
  async requestAccess(vmUuid: string, sessionUuid: string | undefined): Promise<ConsoleProxyRow> {
    const { app } = this;
    return app.locks.withLock([vmLockKey(vmUuid), consoleLockKey(vmUuid)], async () => {
      const vm = await app.use('vms').require(vmUuid, 'vmInstanceUuid');
      this.requireRunning(vm);
      const agent = await this.agents.requireOwnConnected();
      const hostname = advertisedHostname(agent);
      const active = await app.db
        .select()
        .from(consoleProxies)
        .where(and(eq(consoleProxies.vmInstanceUuid, vmUuid), eq(consoleProxies.status, 'Active')))
        .orderBy(desc(consoleProxies.createDate));
      const stale: ConsoleProxyRow[] = [];
      for (const p of active) {
        if (p.sessionUuid !== (sessionUuid ?? null)) continue; // another session's token stays theirs
        if (await this.reusable(p, vm, agent, hostname)) return p;
        stale.push(p);
      }
      await this.retire(stale);

      const host = await app.use('hosts').require(vm.hostUuid!);
      const vnc = await step(`ask host[uuid:${host.uuid}] for the VNC port of VM[uuid:${vmUuid}]`, () =>
        hostCall(app, host.uuid, '/vm/getvncport', { vmUuid }),
      );
      const targetPort = vnc.port;
      if (!targetPort) throw opErr(`host[uuid:${host.uuid}] did not say where the VNC server of VM[uuid:${vmUuid}] listens`);
      const targetHostname = vnc.host || host.managementIp;
      const expiresAt = Date.now() + app.globalConfig.getMs('console', 'vnc.token.timeout');
      const est = await step(`establish a console proxy path to VM[uuid:${vmUuid}]`, () =>
        this.agents.call(agent, '/console/establish', {
          vmUuid,
          targetHostname,
          targetPort,
          expiresAt,
          idleTimeoutMs: app.globalConfig.getMs('console', 'proxy.idleTimeout'),
          proxyHostname: hostname,
        }),
      );
      if (!est.token || !est.proxyPort) throw opErr(`console proxy agent[uuid:${agent.uuid}] established no token or port for VM[uuid:${vmUuid}]`);
      const row: ConsoleProxyRow = {
        uuid: newUuid(),
        vmInstanceUuid: vmUuid,
        agentUuid: agent.uuid,
        hostUuid: host.uuid,
        sessionUuid: sessionUuid ?? null,
        token: est.token,
        targetHostname,
        targetPort,
        proxyHostname: est.proxyHostname ?? hostname,
        proxyPort: est.proxyPort,
        scheme: est.scheme ?? 'ws',
        status: 'Active',
        expiredDate: new Date(est.expiresAt ?? expiresAt),
        createDate: new Date(),
        lastOpDate: new Date(),
      };
      try {
        await app.db.insert(consoleProxies).values(row);
      } catch (e) {
        await this.agents.call(agent, '/console/delete', { token: est.token }).catch(() => undefined);
        throw e;
      }
      return row;
    });
  }

  /** Same agent, host and proxy address, enough life left, and the agent says the token can still open a connection. */
  private async reusable(p: ConsoleProxyRow, vm: VmRow, agent: AgentRow, hostname: string): Promise<boolean> {
    if (p.agentUuid !== agent.uuid || p.hostUuid !== vm.hostUuid) return false;
    if (p.proxyHostname !== hostname || p.proxyPort !== agent.consoleProxyPort) return false;
    const timeoutMs = this.app.globalConfig.getMs('console', 'vnc.token.timeout');
    const left = p.expiredDate.getTime() - Date.now();
    // Enough life left, and no more than the current timeout allows (it may have been shortened since).
    if (left < Math.min(60_000, timeoutMs / 2) || left > timeoutMs + 1000) return false;
    try {
      const check = await this.agents.call(agent, '/console/check', {
        token: p.token,
        vmUuid: vm.uuid,
        targetHostname: p.targetHostname,
        targetPort: p.targetPort,
      });
      return check.available === true;
    } catch {
      return false;
    }
  }

  /** Revokes these tokens on their agents (best effort: an agent that is gone took them along) and marks them Inactive. */
  private async retire(rows: ConsoleProxyRow[]): Promise<void> {
    if (rows.length === 0) return;
    const agents = await this.agentsOf(rows.map((r) => r.agentUuid));
    for (const r of rows) {
      const agent = agents.get(r.agentUuid);
      if (agent) await this.agents.call(agent, '/console/delete', { token: r.token }).catch(() => undefined);
    }
    await this.app.db
      .update(consoleProxies)
      .set({ status: 'Inactive', lastOpDate: new Date() })
      .where(
        inArray(
          consoleProxies.uuid,
          rows.map((r) => r.uuid),
        ),
      );
  }

  /**
   * Revokes every console token of the VM and closes its live sessions (on the agents its rows name), then marks
   * its rows Inactive, or deletes them (`forget`: the VM is gone). Costs one indexed query when there are none.
   */
  async revokeVm(vmUuid: string, why: string, forget = false): Promise<void> {
    const { app } = this;
    const ofVm = eq(consoleProxies.vmInstanceUuid, vmUuid);
    const [any] = await app.db
      .select({ uuid: consoleProxies.uuid })
      .from(consoleProxies)
      .where(forget ? ofVm : and(ofVm, eq(consoleProxies.status, 'Active')))
      .limit(1);
    if (!any) return;
    await app.locks.withLock(consoleLockKey(vmUuid), async () => {
      const rows = await app.db
        .select()
        .from(consoleProxies)
        .where(and(ofVm, eq(consoleProxies.status, 'Active')));
      const agents = await this.agentsOf(rows.map((r) => r.agentUuid));
      for (const agent of agents.values()) {
        await this.agents.call(agent, '/console/delete', { vmUuid }).catch((e) => {
          console.warn(`[console] revoking the console tokens of VM[uuid:${vmUuid}] (${why}) on agent[uuid:${agent.uuid}] failed: ${toApiError(e).message}`);
        });
      }
      if (forget) await app.db.delete(consoleProxies).where(ofVm);
      else if (rows.length) {
        await app.db
          .update(consoleProxies)
          .set({ status: 'Inactive', lastOpDate: new Date() })
          .where(
            inArray(
              consoleProxies.uuid,
              rows.map((r) => r.uuid),
            ),
          );
      }
    });
  }

  /** Subscribes to VM events: a VM leaving the running states, or deleted, loses its console access. */
  watchVms(): void {
    const { app } = this;
    const revoke = (vmUuid: string, why: string, forget = false) => runInContext(backgroundContext('console-revoke'), () => this.revokeVm(vmUuid, why, forget));
    app.events.on('vm.state', ({ vmUuid, oldState, newState }) => {
      // A VM leaving Created has never run, so it has no console access to revoke (saves a query per VM start).
      if (oldState === 'Created') return;
      if (!CONSOLE_STATES.has(newState)) return revoke(vmUuid, `VM ${newState}`);
    });
    app.events.on('vm.deleted', ({ vmUuid }) => revoke(vmUuid, 'VM deleted', true));
  }

  private async agentsOf(uuids: string[]): Promise<Map<string, AgentRow>> {
    if (uuids.length === 0) return new Map();
    const rows = await this.app.db
      .select()
      .from(consoleProxyAgents)
      .where(inArray(consoleProxyAgents.uuid, [...new Set(uuids)]));
    return new Map(rows.map((r) => [r.uuid, r]));
  }
}
