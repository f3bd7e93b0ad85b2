// The security group APIs (upstream SecurityGroupApiInterceptor + SecurityGroupManagerImpl, 1.1). Each change that
// alters what a NIC may pass applies the affected NICs' rule sets inside the API's job (service.apply).
import { and, asc, eq, inArray, notInArray } from 'drizzle-orm';
import { updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import {
  accountResourceRefs,
  l3Networks,
  networkServiceL3Refs,
  securityGroupL3Refs,
  securityGroupRules,
  securityGroups,
  vmInstances,
  vmNics,
  vmNicSecurityGroupRefs,
} from '../db/schema/index.js';
import { argErr, err, notFound, opErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { nicInventory } from '../vm/index.js';
import { securityGroupInventories, type SecurityGroupRow } from './inventory.js';
import type { SecurityGroupService } from './service.js';

export const WORLD_OPEN_CIDR = '0.0.0.0/0';

interface RuleAO {
  type: string;
  protocol: string;
  startPort: number;
  endPort?: number;
  allowedCidr?: string;
}

type Rule = Required<RuleAO>;

const CIDR = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;

/** Upstream 1.1's rule validation, in its order and words; returns the rules as stored (ports ordered, CIDR set). */
export function normalizeRules(rules: RuleAO[]): Rule[] {
  return rules.map((ao) => {
    const dump = JSON.stringify(ao);
    if (ao.type !== 'Ingress' && ao.type !== 'Egress') throw argErr(`unknown rule type[${ao.type}], rule can only be Ingress/Egress. rule dump: ${dump}`);
    if (!['TCP', 'UDP', 'ICMP'].includes(ao.protocol))
      throw argErr(`invalid protocol[${ao.protocol}]. Valid protocols are [TCP, UDP, ICMP]. rule dump: ${dump}`);
    const icmp = ao.protocol === 'ICMP';
    if (icmp && (ao.startPort < -1 || ao.startPort > 255)) throw argErr(`invalid ICMP type[${ao.startPort}]. Valid type is [-1, 255]. rule dump: ${dump}`);
    if (!icmp && (ao.startPort < 0 || ao.startPort > 65535)) throw argErr(`invalid startPort[${ao.startPort}]. Valid range is [0, 65535]. rule dump: ${dump}`);
    const endPort = ao.endPort ?? ao.startPort;
    if (icmp && (endPort < -1 || endPort > 3)) throw argErr(`invalid ICMP code[${endPort}]. Valid range is [-1, 3]. rule dump: ${dump}`);
    if (!icmp && (endPort < 0 || endPort > 65535)) throw argErr(`invalid endPort[${endPort}]. Valid range is [0, 65535]. rule dump: ${dump}`);
    if (ao.allowedCidr !== undefined && !CIDR.test(ao.allowedCidr)) throw argErr(`invalid CIDR[${ao.allowedCidr}]. rule dump: ${dump}`);
    return {
      type: ao.type,
      protocol: ao.protocol,
      // Reversed port ranges are swapped; an ICMP rule's pair is (type, code), which has no order to fix.
      startPort: icmp ? ao.startPort : Math.min(ao.startPort, endPort),
      endPort: icmp ? endPort : Math.max(ao.startPort, endPort),
      allowedCidr: ao.allowedCidr ?? WORLD_OPEN_CIDR,
    };
  });
}

export async function loadSecurityGroup(db: Tx, uuid: string, field = 'uuid'): Promise<SecurityGroupRow> {
  const [row] = await db.select().from(securityGroups).where(eq(securityGroups.uuid, uuid));
  if (!row) throw notFound('SecurityGroupVO', uuid, field);
  return row;
}

export function securityGroupHandlers(app: DomainContext, service: SecurityGroupService) {
  const { db } = app;
  const inventory = async (uuid: string) => ({ inventory: (await securityGroupInventories([await loadSecurityGroup(db, uuid)], db))[0] });
  const attached = async (sgUuid: string, l3Uuid: string) =>
    (
      await db
        .select({ l3: securityGroupL3Refs.l3NetworkUuid })
        .from(securityGroupL3Refs)
        .where(and(eq(securityGroupL3Refs.securityGroupUuid, sgUuid), eq(securityGroupL3Refs.l3NetworkUuid, l3Uuid)))
    ).length > 0;

  return defineHandlers({
    CreateSecurityGroup: {
      async check(msg) {
        if (msg.resourceUuid) {
          const [used] = await db.select({ uuid: securityGroups.uuid }).from(securityGroups).where(eq(securityGroups.uuid, msg.resourceUuid));
          if (used) throw argErr(`resourceUuid[${msg.resourceUuid}] is already used`);
        }
      },
      async run(msg) {
        const [row] = await db
          .insert(securityGroups)
          .values({ uuid: msg.resourceUuid ?? newUuid(), name: msg.name, description: msg.description ?? null })
          .returning();
        return inventory(row.uuid);
      },
    },
    UpdateSecurityGroup: updateHandler(app, {
      table: securityGroups,
      entity: 'SecurityGroupVO',
      inventory: async (row) => (await securityGroupInventories([row], db))[0],
      fields: ['name', 'description'],
    }),
    ChangeSecurityGroupState: {
      check: async (msg) => void (await loadSecurityGroup(db, msg.uuid)),
      async run(msg) {
        const state = msg.stateEvent === 'enable' ? 'Enabled' : 'Disabled';
        const [before] = await db.select({ state: securityGroups.state }).from(securityGroups).where(eq(securityGroups.uuid, msg.uuid));
        await db.update(securityGroups).set({ state, lastOpDate: new Date() }).where(eq(securityGroups.uuid, msg.uuid));
        if (before && before.state !== state) await service.apply(await service.memberNics([msg.uuid]));
        return inventory(msg.uuid);
      },
    },
    DeleteSecurityGroup: {
      async run(msg) {
        // Unknown groups: success, as upstream. Rules, attachments and memberships go with the row (FK cascade).
        const nics = await service.memberNics([msg.uuid]);
        await db.delete(securityGroups).where(eq(securityGroups.uuid, msg.uuid));
        await service.apply(nics);
        return {};
      },
    },
    AddSecurityGroupRule: {
      async check(msg) {
        await loadSecurityGroup(db, msg.securityGroupUuid, 'securityGroupUuid');
        normalizeRules(msg.rules);
      },
      async run(msg) {
        const rules = normalizeRules(msg.rules);
        await loadSecurityGroup(db, msg.securityGroupUuid, 'securityGroupUuid');
        // Increasing createDates keep the rules in the order given.
        const now = Date.now();
        await db.insert(securityGroupRules).values(
          rules.map((r, i) => ({
            uuid: newUuid(),
            securityGroupUuid: msg.securityGroupUuid,
            ...r,
            createDate: new Date(now + i),
            lastOpDate: new Date(now + i),
          })),
        );
        await service.apply(await service.memberNics([msg.securityGroupUuid]));
        return inventory(msg.securityGroupUuid);
      },
    },
    DeleteSecurityGroupRule: {
      async run(msg) {
        const ruleUuids = [msg.ruleUuids].flat();
        const found = await db
          .select({ uuid: securityGroupRules.uuid, sg: securityGroupRules.securityGroupUuid })
          .from(securityGroupRules)
          .where(inArray(securityGroupRules.uuid, ruleUuids));
        if (found.length === 0) return {};
        const first = found.find((r) => r.uuid === ruleUuids.find((u) => found.some((f) => f.uuid === u)))!;
        const groups = [...new Set(found.map((r) => r.sg))];
        await db.delete(securityGroupRules).where(
          inArray(
            securityGroupRules.uuid,
            found.map((r) => r.uuid),
          ),
        );
        await service.apply(await service.memberNics(groups));
        return inventory(first.sg);
      },
    },
    AttachSecurityGroupToL3Network: {
      async check(msg) {
        await loadSecurityGroup(db, msg.securityGroupUuid, 'securityGroupUuid');
        const [l3] = await db.select({ uuid: l3Networks.uuid }).from(l3Networks).where(eq(l3Networks.uuid, msg.l3NetworkUuid));
        if (!l3) throw notFound('L3NetworkVO', msg.l3NetworkUuid, 'l3NetworkUuid');
        if (await attached(msg.securityGroupUuid, msg.l3NetworkUuid)) {
          throw opErr(`security group[uuid:${msg.securityGroupUuid}] has attached to l3Network[uuid:${msg.l3NetworkUuid}], can't attach again`);
        }
        const [service] = await db
          .select({ t: networkServiceL3Refs.networkServiceType })
          .from(networkServiceL3Refs)
          .where(and(eq(networkServiceL3Refs.l3NetworkUuid, msg.l3NetworkUuid), eq(networkServiceL3Refs.networkServiceType, 'SecurityGroup')));
        if (!service) {
          throw opErr(
            `L3 network[uuid:${msg.l3NetworkUuid}] does not run the SecurityGroup network service; attach it with AttachNetworkServiceToL3Network first`,
          );
        }
      },
      async run(msg) {
        // Attaching twice at once: the primary key keeps one row, both calls succeed with the same result.
        await db.insert(securityGroupL3Refs).values({ securityGroupUuid: msg.securityGroupUuid, l3NetworkUuid: msg.l3NetworkUuid }).onConflictDoNothing();
        return inventory(msg.securityGroupUuid);
      },
    },
    DetachSecurityGroupFromL3Network: {
      async check(msg) {
        await loadSecurityGroup(db, msg.securityGroupUuid, 'securityGroupUuid');
        if (!(await attached(msg.securityGroupUuid, msg.l3NetworkUuid))) {
          throw opErr(`security group[uuid:${msg.securityGroupUuid}] has not attached to l3Network[uuid:${msg.l3NetworkUuid}], can't detach`);
        }
      },
      async run(msg) {
        const nics = await db.transaction(async (tx) => {
          const onL3 = tx.select({ uuid: vmNics.uuid }).from(vmNics).where(eq(vmNics.l3NetworkUuid, msg.l3NetworkUuid));
          const gone = await tx
            .delete(vmNicSecurityGroupRefs)
            .where(and(eq(vmNicSecurityGroupRefs.securityGroupUuid, msg.securityGroupUuid), inArray(vmNicSecurityGroupRefs.vmNicUuid, onL3)))
            .returning({ uuid: vmNicSecurityGroupRefs.vmNicUuid });
          await tx
            .delete(securityGroupL3Refs)
            .where(and(eq(securityGroupL3Refs.securityGroupUuid, msg.securityGroupUuid), eq(securityGroupL3Refs.l3NetworkUuid, msg.l3NetworkUuid)));
          return gone.map((r) => r.uuid);
        });
        await service.apply(nics);
        return inventory(msg.securityGroupUuid);
      },
    },
    AddVmNicToSecurityGroup: {
      async check(msg) {
        await loadSecurityGroup(db, msg.securityGroupUuid, 'securityGroupUuid');
        await nicsToAdd(db, msg.securityGroupUuid, msg.vmNicUuids);
      },
      async run(msg) {
        const nics = await nicsToAdd(db, msg.securityGroupUuid, msg.vmNicUuids);
        await db
          .insert(vmNicSecurityGroupRefs)
          .values(nics.map((n) => ({ vmNicUuid: n.uuid, securityGroupUuid: msg.securityGroupUuid, vmInstanceUuid: n.vmInstanceUuid })))
          .onConflictDoNothing();
        await service.apply(nics.map((n) => n.uuid));
        return {};
      },
    },
    DeleteVmNicFromSecurityGroup: {
      check: async (msg) => void (await loadSecurityGroup(db, msg.securityGroupUuid, 'securityGroupUuid')),
      async run(msg) {
        // NICs not in the group are skipped (upstream's interceptor filters them out).
        const gone = await db
          .delete(vmNicSecurityGroupRefs)
          .where(and(eq(vmNicSecurityGroupRefs.securityGroupUuid, msg.securityGroupUuid), inArray(vmNicSecurityGroupRefs.vmNicUuid, [msg.vmNicUuids].flat())))
          .returning({ uuid: vmNicSecurityGroupRefs.vmNicUuid });
        await service.apply(gone.map((r) => r.uuid));
        return {};
      },
    },
    GetCandidateVmNicForSecurityGroup: {
      async run(msg, call) {
        await loadSecurityGroup(db, msg.securityGroupUuid, 'securityGroupUuid');
        const members = db
          .select({ uuid: vmNicSecurityGroupRefs.vmNicUuid })
          .from(vmNicSecurityGroupRefs)
          .where(eq(vmNicSecurityGroupRefs.securityGroupUuid, msg.securityGroupUuid));
        const l3s = db
          .select({ uuid: securityGroupL3Refs.l3NetworkUuid })
          .from(securityGroupL3Refs)
          .where(eq(securityGroupL3Refs.securityGroupUuid, msg.securityGroupUuid));
        const conditions = [
          inArray(vmNics.l3NetworkUuid, l3s),
          notInArray(vmNics.uuid, members),
          eq(vmInstances.type, 'UserVm'),
          inArray(vmInstances.state, ['Running', 'Stopped']),
        ];
        // A Normal account: only NICs of its own VMs.
        const session = call.session;
        if (session && session.accountType !== 'SystemAdmin') {
          const own = db
            .select({ uuid: accountResourceRefs.resourceUuid })
            .from(accountResourceRefs)
            .where(eq(accountResourceRefs.accountUuid, session.accountUuid));
          conditions.push(inArray(vmInstances.uuid, own));
        }
        const rows = await db
          .select({ nic: vmNics })
          .from(vmNics)
          .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
          .where(and(...conditions))
          .orderBy(asc(vmNics.createDate), asc(vmNics.uuid));
        return { inventories: rows.map((r) => nicInventory(r.nic)) };
      },
    },
  });
}

/** The NICs to add: all must exist (SYS.1003) and be on L3 networks the group is attached to (SG.1000). */
async function nicsToAdd(db: Tx, sgUuid: string, requested: string[]) {
  const uuids = [...new Set([requested].flat())];
  const nics = await db
    .select({ uuid: vmNics.uuid, vmInstanceUuid: vmNics.vmInstanceUuid, l3NetworkUuid: vmNics.l3NetworkUuid })
    .from(vmNics)
    .where(inArray(vmNics.uuid, uuids));
  const missing = uuids.filter((u) => !nics.some((n) => n.uuid === u));
  if (missing.length) throw err('SYS.1003', `cannot find vm nics[uuids:${missing.join(', ')}]`);
  const l3s = new Set(
    (await db.select({ l3: securityGroupL3Refs.l3NetworkUuid }).from(securityGroupL3Refs).where(eq(securityGroupL3Refs.securityGroupUuid, sgUuid))).map(
      (r) => r.l3,
    ),
  );
  const off = nics.filter((n) => !l3s.has(n.l3NetworkUuid));
  if (off.length) {
    throw err(
      'SG.1000',
      `VM nics[uuids:${off.map((n) => n.uuid).join(', ')}] are not on L3 networks that have been attached to the security group[uuid:${sgUuid}]`,
    );
  }
  return nics;
}
