import { and, eq, ne } from 'drizzle-orm';
import { deleteHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import type { AgentRequest } from '../agent-client/index.js';
import type { CallContext } from '../core/context.js';
import { argErr, err, notFound } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { clusters, hosts } from '../db/schema/index.js';
import { cpuMemoryCapacity } from './capacity.js';
import { credentialVault, newAgentSecret } from '../core/credentials.js';
import { hostInventory } from './inventory.js';
import { stateErrorNotConnected, type HostService } from './service.js';

const adminOnly = (call: CallContext) => {
  if (call.session?.accountType !== 'SystemAdmin') throw err('ID.1002', 'only an admin account can do this');
};

export function hostHandlers(app: DomainContext, service: HostService) {
  const { db } = app;

  const clusterOf = async (uuid: string, hypervisorType: 'KVM' | 'Simulator') => {
    const [c] = await db.select().from(clusters).where(eq(clusters.uuid, uuid));
    if (!c) throw notFound('ClusterVO', uuid, 'clusterUuid');
    if (c.hypervisorType !== hypervisorType) {
      throw argErr(`field[clusterUuid]: cluster[uuid:${uuid}] has hypervisorType ${c.hypervisorType}; this host needs a ${hypervisorType} cluster`);
    }
    return c;
  };

  /** managementIp must not belong to another host (of `hypervisorType` when given). */
  const uniqueIp = async (ip: string, opts: { except?: string; hypervisorType?: string } = {}) => {
    const conditions = [eq(hosts.managementIp, ip)];
    if (opts.except) conditions.push(ne(hosts.uuid, opts.except));
    if (opts.hypervisorType) conditions.push(eq(hosts.hypervisorType, opts.hypervisorType));
    const [other] = await db
      .select({ uuid: hosts.uuid })
      .from(hosts)
      .where(and(...conditions));
    if (other) throw argErr(`field[managementIp]: ${ip} is already the management IP of host[uuid:${other.uuid}]`);
  };

  return defineHandlers({
    AddSimulatorHost: {
      async check(msg) {
        await clusterOf(msg.clusterUuid, 'Simulator');
        if (!app.options.simulatorUrl) throw argErr('no simulator agent is configured on this management node');
      },
      async run(msg) {
        const cluster = await clusterOf(msg.clusterUuid, 'Simulator');
        const data = { uuid: newUuid() };
        await runFlow(
          'add-simulator-host',
          [
            {
              name: 'write host',
              run: async () =>
                void (await db.insert(hosts).values({
                  uuid: data.uuid,
                  zoneUuid: cluster.zoneUuid,
                  clusterUuid: cluster.uuid,
                  name: msg.name,
                  description: msg.description ?? null,
                  managementIp: msg.managementIp,
                  hypervisorType: 'Simulator',
                  architecture: cluster.architecture ?? 'x86_64',
                })),
              rollback: async () => void (await db.delete(hosts).where(eq(hosts.uuid, data.uuid))),
            },
            {
              name: 'connect',
              run: async () =>
                void (await service.connect(data.uuid, { errorCode: 'HOST.1003', simulatorCpuNum: msg.cpuCapacity, simulatorMemory: msg.memoryCapacity })),
            },
          ],
          data,
        );
        return { inventory: hostInventory(await service.require(data.uuid)) };
      },
    },
    AddKVMHost: {
      async check(msg) {
        const m = kvmHostMsg(msg);
        await clusterOf(m.clusterUuid, 'KVM');
        await uniqueIp(m.managementIp);
      },
      // Connecting → deploy → echo → connect → capacity → Connected; any failure removes the host again (as
      // upstream's add-host rollback does), so nothing is left Connecting or half-added. Its deploy log stays.
      async run(msg) {
        const m = kvmHostMsg(msg);
        const cluster = await clusterOf(m.clusterUuid, 'KVM');
        const data = { uuid: m.resourceUuid ?? newUuid() };
        const credential = credentialVault(app).seal({ password: m.password, privateKey: m.sshKey, agentSecret: newAgentSecret() });
        await runFlow(
          'add-kvm-host',
          [
            {
              name: 'write host',
              // Checked again under a lock on the address: two adds of one address may have passed their checks together.
              run: () =>
                app.locks.withLock(`host-management-ip:${m.managementIp}`, async () => {
                  await uniqueIp(m.managementIp);
                  await db.insert(hosts).values({
                    uuid: data.uuid,
                    zoneUuid: cluster.zoneUuid,
                    clusterUuid: cluster.uuid,
                    name: m.name,
                    description: m.description ?? null,
                    managementIp: m.managementIp,
                    hypervisorType: 'KVM',
                    architecture: cluster.architecture ?? 'x86_64',
                    username: m.username,
                    sshPort: m.sshPort ?? 22,
                    credential,
                  });
                }),
              rollback: async () => void (await db.delete(hosts).where(eq(hosts.uuid, data.uuid))),
            },
            { name: 'deploy and connect', run: async () => void (await service.connect(data.uuid, { errorCode: 'HOST.1003', deploy: true })) },
          ],
          data,
        );
        return { inventory: hostInventory(await service.require(data.uuid)) };
      },
    },
    UpdateSimulatorHost: {
      async check(msg, call) {
        adminOnly(call);
        const h = await service.require(msg.uuid);
        if (h.hypervisorType !== 'Simulator') throw argErr(`field[uuid]: host[uuid:${msg.uuid}] is a ${h.hypervisorType} host, not a simulated one`);
      },
      async run(msg) {
        const h = await service.require(msg.uuid);
        const knobs: AgentRequest<'/simulator/hosts/config'> = { hostUuid: h.uuid };
        if (msg.connected !== undefined) knobs.connected = msg.connected;
        if (msg.commandDelays !== undefined) {
          // 0 removes a delay; the simulator replaces the whole map.
          knobs.commandDelays = Object.fromEntries(Object.entries(msg.commandDelays).filter(([, ms]) => ms > 0));
        }
        if (msg.failCommands !== undefined) knobs.failCommands = msg.failCommands;
        await app.agents.call(service.agentUrlOf(h), '/simulator/hosts/config', knobs);
        return { inventory: hostInventory(await service.require(msg.uuid)) };
      },
    },
    ReconnectHost: {
      check: async (msg) => void (await service.require(msg.uuid)),
      // KVM hosts: the deployer runs again first (everything in place is skipped; a dead agent is restarted).
      run: async (msg) => ({ inventory: hostInventory(await service.connect(msg.uuid, { errorCode: 'HOST.1002', deploy: true })) }),
    },
    ChangeHostState: {
      async check(msg) {
        const h = await service.require(msg.uuid);
        if (msg.stateEvent === 'maintain' && h.state !== 'Maintenance' && h.status !== 'Connected') throw stateErrorNotConnected(h);
      },
      run: async (msg) => ({ inventory: hostInventory(await service.changeState(msg.uuid, msg.stateEvent)) }),
    },
    UpdateHost: {
      async check(msg) {
        await service.require(msg.uuid);
        if (msg.managementIp !== undefined) await uniqueIp(msg.managementIp, { except: msg.uuid });
      },
      async run(msg) {
        const set: Partial<typeof hosts.$inferInsert> = { lastOpDate: new Date() };
        if (msg.name !== undefined) set.name = msg.name;
        if (msg.description !== undefined) set.description = msg.description;
        if (msg.managementIp !== undefined) {
          await uniqueIp(msg.managementIp, { except: msg.uuid });
          set.managementIp = msg.managementIp;
        }
        const [h] = await db.update(hosts).set(set).where(eq(hosts.uuid, msg.uuid)).returning();
        if (!h) throw notFound('HostVO', msg.uuid);
        return { inventory: hostInventory(h) };
      },
    },
    DeleteHost: deleteHandler(app, { node: 'host' }),
    GetCpuMemoryCapacity: {
      async check(msg) {
        const lists = [msg.zoneUuids, msg.clusterUuids, msg.hostUuids];
        if (!msg.all && !lists.some((l) => l && l.length > 0)) {
          throw argErr('give at least one non-empty list of zoneUuids, clusterUuids or hostUuids, or all=true');
        }
      },
      run: async (msg) => cpuMemoryCapacity(db, msg),
    },
  });
}

interface KvmHostMsg {
  name: string;
  description?: string;
  managementIp: string;
  clusterUuid: string;
  username: string;
  password?: string;
  sshKey?: string;
  sshPort?: number;
  resourceUuid?: string;
}

/** The body schema's anyOf (password or sshKey) hides the fields from the generated type. */
const kvmHostMsg = (msg: unknown) => msg as KvmHostMsg;
