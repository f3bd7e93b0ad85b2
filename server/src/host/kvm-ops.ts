// KVM host APIs beyond adding one (1.1's KVMHost, KVMHostFactory, KVMApiInterceptor): UpdateKVMHost (the SSH login
// the deployer uses, sealed with the host's other credentials; the next ReconnectHost logs in with it) and
// KvmRunShell (a script run on each listed host through its agent, one result per host, audited).
import { createHash } from 'node:crypto';
import { and, eq, inArray, ne } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { credentialVault } from '../core/credentials.js';
import { argErr, err, notFound, toApiError } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { hosts } from '../db/schema/index.js';
import { hostInventory } from './inventory.js';
import { hostLockKey, type HostService } from './service.js';

const describe = (h: { uuid: string; name: string }) => `host[uuid:${h.uuid}, name:${h.name}]`;

export function kvmHostHandlers(app: DomainContext, service: HostService) {
  const { db } = app;

  const requireKvm = async (uuid: string) => {
    const h = await service.require(uuid);
    if (h.hypervisorType !== 'KVM') throw argErr(`field[uuid]: host[uuid:${uuid}] is a ${h.hypervisorType} host, not a KVM host`);
    return h;
  };
  const uniqueIp = async (ip: string, except: string) => {
    const [other] = await db
      .select({ uuid: hosts.uuid })
      .from(hosts)
      .where(and(eq(hosts.managementIp, ip), ne(hosts.uuid, except)));
    if (other) throw argErr(`field[managementIp]: ${ip} is already the management IP of host[uuid:${other.uuid}]`);
  };

  return defineHandlers({
    UpdateKVMHost: {
      async check(msg) {
        await requireKvm(msg.uuid);
        if (msg.managementIp !== undefined) await uniqueIp(msg.managementIp, msg.uuid);
      },
      async run(msg) {
        // Under the host's lock: a reconnect running now finishes with the old login; the next one uses the new.
        const row = await app.locks.withLock(hostLockKey(msg.uuid), async () => {
          const h = await requireKvm(msg.uuid);
          const set: Partial<typeof hosts.$inferInsert> = { lastOpDate: new Date() };
          if (msg.name !== undefined) set.name = msg.name;
          if (msg.description !== undefined) set.description = msg.description;
          if (msg.managementIp !== undefined) {
            await uniqueIp(msg.managementIp, msg.uuid);
            set.managementIp = msg.managementIp;
          }
          if (msg.username !== undefined) set.username = msg.username;
          if (msg.sshPort !== undefined) set.sshPort = msg.sshPort;
          if (msg.password !== undefined) {
            const vault = credentialVault(app);
            // The private key and the agent's own secret stay; only the password changes.
            const old = h.credential ? vault.open(h.credential, describe(h)) : {};
            set.credential = vault.seal({ ...old, password: msg.password });
          }
          const [updated] = await db.update(hosts).set(set).where(eq(hosts.uuid, msg.uuid)).returning();
          return updated;
        });
        if (!row) throw notFound('HostVO', msg.uuid);
        return { inventory: hostInventory(row) };
      },
    },
    KvmRunShell: {
      async check(msg, call) {
        // The spec's adminOnly is the gate; this holds even if a permission rule ever let a tenant through.
        if (call.session?.accountType !== 'SystemAdmin') throw err('ID.1002', 'only an admin account can run shell scripts on hosts');
        const found = await db.select().from(hosts).where(inArray(hosts.uuid, msg.hostUuids));
        for (const uuid of msg.hostUuids) {
          const h = found.find((x) => x.uuid === uuid);
          if (!h) throw notFound('HostVO', uuid, 'hostUuids');
          if (h.hypervisorType !== 'KVM' && h.hypervisorType !== 'Simulator') {
            throw argErr(`field[hostUuids]: host[uuid:${uuid}] is a ${h.hypervisorType} host; KvmRunShell runs on KVM hosts`);
          }
        }
      },
      async run(msg, call) {
        const results: Record<string, { returnCode?: number; stdout?: string; stderr?: string; errorCode?: any }> = {};
        await Promise.all(
          msg.hostUuids.map(async (uuid) => {
            try {
              const r = await service.call(uuid, '/host/shell', { script: msg.script });
              results[uuid] = { returnCode: r.returnCode ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
            } catch (e) {
              // One host's failure is its own result (1.1: ShellResult.errorCode), the others still answer.
              results[uuid] = { errorCode: toApiError(e).error };
            }
          }),
        );
        // The audit line: who ran what where, and how it ended. The script may carry secrets: only its digest.
        const digest = createHash('sha256').update(msg.script).digest('hex');
        const outcome = Object.entries(results)
          .map(([uuid, r]) => `${uuid}:${r.errorCode ? r.errorCode.code : `rc=${r.returnCode}`}`)
          .join(',');
        console.info(
          `[audit] KvmRunShell account=${call.session?.accountUuid ?? '-'}${call.session?.userUuid ? ` user=${call.session.userUuid}` : ''}` +
            ` job=${call.jobUuid ?? '-'} script.sha256=${digest} script.length=${msg.script.length} hosts=${outcome}`,
        );
        return { inventory: results };
      },
    },
  });
}
