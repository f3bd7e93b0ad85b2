import { and, eq, inArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { CallContext } from '../core/context.js';
import { formatDate } from '../core/dates.js';
import { argErr, err, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import {
  accountResourceRefs,
  accounts,
  policies,
  quotas,
  sessions,
  sharedResources,
  userGroupPolicyRefs,
  userGroupUserRefs,
  userGroups,
  userPolicyRefs,
  users,
} from '../db/schema/index.js';
import { hashPassword } from './passwords.js';
import { QUOTA_DEFAULTS, quotaLimits, quotaUsage } from './quotas.js';
import { ADMIN_UUID } from './service.js';

type AccountRow = typeof accounts.$inferSelect;
const opt = <T>(v: T | null) => v ?? undefined;
const dates = (r: { createDate: Date; lastOpDate: Date }) => ({ createDate: formatDate(r.createDate)!, lastOpDate: formatDate(r.lastOpDate)! });

export const accountInventory = (a: AccountRow) => ({
  uuid: a.uuid,
  name: a.name,
  description: a.description ?? undefined,
  type: a.type as 'SystemAdmin' | 'Normal' | 'ThirdParty',
  createDate: formatDate(a.createDate)!,
  lastOpDate: formatDate(a.lastOpDate)!,
});

export const accountDescriptor: InventoryDescriptor<AccountRow> = {
  name: 'AccountInventory',
  table: accounts,
  fields: fieldsFromTable(accounts, { exclude: ['passwordHash'] }),
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(accountInventory),
};

const userInventory = (u: typeof users.$inferSelect) => ({
  uuid: u.uuid,
  accountUuid: u.accountUuid,
  name: u.name,
  description: opt(u.description),
  ...dates(u),
});
const groupInventory = (g: typeof userGroups.$inferSelect) => ({
  uuid: g.uuid,
  accountUuid: g.accountUuid,
  name: g.name,
  description: opt(g.description),
  ...dates(g),
});
const policyInventory = (p: typeof policies.$inferSelect) => ({
  uuid: p.uuid,
  accountUuid: p.accountUuid,
  name: p.name,
  description: opt(p.description),
  statements: p.statements,
  ...dates(p),
});

// Users, groups, policies and quotas are seen by their account (the query engine's `ownerKey`).
export const identityDescriptors: InventoryDescriptor[] = [
  {
    name: 'UserInventory',
    table: users,
    fields: fieldsFromTable(users, { exclude: ['passwordHash'] }),
    ownerKey: 'accountUuid',
    defaultSort: 'createDate',
    toInventories: async (r: (typeof users.$inferSelect)[]) => r.map(userInventory),
  },
  {
    name: 'UserGroupInventory',
    table: userGroups,
    fields: fieldsFromTable(userGroups),
    ownerKey: 'accountUuid',
    defaultSort: 'createDate',
    toInventories: async (r: (typeof userGroups.$inferSelect)[]) => r.map(groupInventory),
  },
  {
    name: 'PolicyInventory',
    table: policies,
    fields: fieldsFromTable(policies),
    ownerKey: 'accountUuid',
    defaultSort: 'createDate',
    toInventories: async (r: (typeof policies.$inferSelect)[]) => r.map(policyInventory),
  },
  {
    name: 'QuotaInventory',
    table: quotas,
    fields: fieldsFromTable(quotas, { exclude: ['uuid'] }),
    ownerKey: 'identityUuid',
    defaultSort: 'name',
    toInventories: async (r: (typeof quotas.$inferSelect)[]) =>
      r.map((q) => ({ name: q.name, identityUuid: q.identityUuid, identityType: q.identityType, value: q.value, ...dates(q) })),
  },
  {
    name: 'SharedResourceInventory',
    table: sharedResources,
    fields: fieldsFromTable(sharedResources, { exclude: ['id'] }),
    ownerKey: 'ownerAccountUuid',
    defaultSort: 'createDate',
    toInventories: async (r: (typeof sharedResources.$inferSelect)[]) =>
      r.map((x) => ({
        ownerAccountUuid: x.ownerAccountUuid,
        receiverAccountUuid: opt(x.receiverAccountUuid),
        toPublic: x.toPublic,
        resourceType: x.resourceType,
        resourceUuid: x.resourceUuid,
        ...dates(x),
      })),
  },
  {
    name: 'AccountResourceRefInventory',
    table: accountResourceRefs,
    fields: fieldsFromTable(accountResourceRefs),
    ownerKey: 'accountUuid',
    defaultSort: 'createDate',
    toInventories: async (r: (typeof accountResourceRefs.$inferSelect)[]) =>
      r.map((x) => ({
        accountUuid: x.accountUuid,
        ownerAccountUuid: x.ownerAccountUuid,
        resourceUuid: x.resourceUuid,
        resourceType: x.resourceType,
        permission: x.permission,
        isShared: x.isShared,
        ...dates(x),
      })),
  },
];

/** What DeleteAccount deletes, in this order, through each resource's own API (resource type → operation). */
const OWNED_DELETIONS: Array<{ type: string; steps: Array<[string, (uuid: string) => Record<string, unknown>]> }> = [
  {
    type: 'VmInstanceVO',
    steps: [
      ['DestroyVmInstance', (uuid) => ({ uuid })],
      ['ExpungeVmInstance', (uuid) => ({ uuid })],
    ],
  },
  { type: 'VolumeVO', steps: [['DeleteDataVolume', (uuid) => ({ uuid })]] },
  { type: 'ImageVO', steps: [['DeleteImage', (uuid) => ({ uuid })]] },
  { type: 'L3NetworkVO', steps: [['DeleteL3Network', (uuid) => ({ uuid })]] },
  { type: 'InstanceOfferingVO', steps: [['DeleteInstanceOffering', (uuid) => ({ uuid })]] },
  { type: 'DiskOfferingVO', steps: [['DeleteDiskOffering', (uuid) => ({ uuid })]] },
];

export function identityHandlers(app: DomainContext) {
  const identity = app.use('identity');
  const { db } = app;
  const adminOnly = (call: { session?: { accountType: string } }) => {
    if (call.session?.accountType !== 'SystemAdmin') throw err('ID.1002', 'only an admin account can do this');
  };
  const sessionInventory = (s: typeof sessions.$inferSelect) => ({
    inventory: {
      uuid: s.uuid,
      accountUuid: s.accountUuid,
      userUuid: s.userUuid,
      userType: s.userType,
      expiredDate: formatDate(s.expiredDate)!,
      createDate: formatDate(s.createDate)!,
    },
  });
  const account = (call: CallContext) => call.session!.accountUuid;
  async function userOf(uuid: string, field = 'uuid') {
    const [u] = await db.select().from(users).where(eq(users.uuid, uuid));
    if (!u) throw notFound('UserVO', uuid, field);
    return u;
  }
  async function groupOf(uuid: string, field = 'uuid') {
    const [g] = await db.select().from(userGroups).where(eq(userGroups.uuid, uuid));
    if (!g) throw notFound('UserGroupVO', uuid, field);
    return g;
  }
  async function policyOf(uuid: string, field = 'uuid') {
    const [p] = await db.select().from(policies).where(eq(policies.uuid, uuid));
    if (!p) throw notFound('PolicyVO', uuid, field);
    return p;
  }
  const sameAccount = (a: { accountUuid: string }, b: { accountUuid: string }, what: string) => {
    if (a.accountUuid !== b.accountUuid) throw argErr(`${what} belong to different accounts`);
  };
  const nameClash = async (table: typeof users | typeof userGroups | typeof policies, accountUuid: string, name: string, kind: string, except?: string) => {
    const [clash] = await db
      .select({ uuid: table.uuid })
      .from(table)
      .where(and(eq(table.accountUuid, accountUuid), eq(table.name, name)));
    if (clash && clash.uuid !== except) throw argErr(`the account already has a ${kind} named [${name}]`);
  };

  return defineHandlers({
    LogInByAccount: {
      run: async (msg, call) => sessionInventory(await identity.logIn(msg.accountName, msg.password, call.clientIp)),
    },
    LogInByUser: {
      run: async (msg, call) => sessionInventory(await identity.logInByUser(msg, call.clientIp)),
    },
    LogOut: {
      async run(msg) {
        await identity.logOut(msg.sessionUuid);
        return {};
      },
    },
    ValidateSession: {
      run: async (msg) => ({ valid: await identity.isValid(msg.sessionUuid) }),
    },
    CreateAccount: {
      check: async (_msg, call) => adminOnly(call),
      run: async (msg) => ({ inventory: accountInventory(await identity.createAccount(msg)) }),
    },
    UpdateAccount: {
      async check(msg, call) {
        if (call.session?.accountUuid !== msg.uuid) adminOnly(call);
        if (!(await identity.findAccount(msg.uuid))) throw notFound('AccountVO', msg.uuid);
      },
      async run(msg) {
        const row = await identity.updateAccount(msg.uuid, msg);
        if (!row) throw notFound('AccountVO', msg.uuid);
        return { inventory: accountInventory(row) };
      },
    },
    DeleteAccount: {
      async check(msg) {
        if (msg.uuid === ADMIN_UUID) throw argErr('the built-in admin account cannot be deleted');
        if (!(await identity.findAccount(msg.uuid))) throw notFound('AccountVO', msg.uuid);
      },
      async run(msg, call) {
        const owned = await db.select().from(accountResourceRefs).where(eq(accountResourceRefs.accountUuid, msg.uuid));
        for (const { type, steps } of OWNED_DELETIONS) {
          for (const ref of owned.filter((r) => r.resourceType === type)) {
            for (const [api, body] of steps) {
              const handler = app.handlerOf(api);
              if (!handler) continue;
              const m = body(ref.resourceUuid);
              try {
                await handler.check?.(m, call);
                await handler.run(m, call);
              } catch (e) {
                // Gone already (or never fully created): nothing to delete.
                if ((e as { error?: { code?: string } }).error?.code === 'SYS.1003') break;
                throw e;
              }
            }
          }
        }
        // Users, groups, policies, quotas, shares, ownership records and sessions go with the account (foreign keys).
        await db.delete(accounts).where(eq(accounts.uuid, msg.uuid));
        return {};
      },
    },
    CreateUser: {
      check: async (msg, call) => nameClash(users, account(call), msg.name, 'user'),
      async run(msg, call) {
        const [row] = await db
          .insert(users)
          .values({
            uuid: msg.resourceUuid ?? newUuid(),
            accountUuid: account(call),
            name: msg.name,
            passwordHash: await hashPassword(msg.password),
            description: msg.description ?? null,
          })
          .returning();
        return { inventory: userInventory(row) };
      },
    },
    UpdateUser: {
      async check(msg) {
        const u = await userOf(msg.uuid);
        if (msg.name !== undefined) await nameClash(users, u.accountUuid, msg.name, 'user', u.uuid);
      },
      async run(msg) {
        const set: Partial<typeof users.$inferInsert> = { lastOpDate: new Date() };
        if (msg.name !== undefined) set.name = msg.name;
        if (msg.description !== undefined) set.description = msg.description;
        if (msg.password !== undefined) set.passwordHash = await hashPassword(msg.password);
        const [row] = await db.update(users).set(set).where(eq(users.uuid, msg.uuid)).returning();
        if (!row) throw notFound('UserVO', msg.uuid);
        return { inventory: userInventory(row) };
      },
    },
    DeleteUser: {
      async run(msg) {
        await db.delete(sessions).where(and(eq(sessions.userUuid, msg.uuid), eq(sessions.userType, 'UserVO')));
        await db.delete(users).where(eq(users.uuid, msg.uuid));
        return {};
      },
    },
    CreateUserGroup: {
      check: async (msg, call) => nameClash(userGroups, account(call), msg.name, 'group'),
      async run(msg, call) {
        const [row] = await db
          .insert(userGroups)
          .values({ uuid: msg.resourceUuid ?? newUuid(), accountUuid: account(call), name: msg.name, description: msg.description ?? null })
          .returning();
        return { inventory: groupInventory(row) };
      },
    },
    UpdateUserGroup: {
      async check(msg) {
        const g = await groupOf(msg.uuid);
        if (msg.name !== undefined) await nameClash(userGroups, g.accountUuid, msg.name, 'group', g.uuid);
      },
      async run(msg) {
        const set: Partial<typeof userGroups.$inferInsert> = { lastOpDate: new Date() };
        if (msg.name !== undefined) set.name = msg.name;
        if (msg.description !== undefined) set.description = msg.description;
        const [row] = await db.update(userGroups).set(set).where(eq(userGroups.uuid, msg.uuid)).returning();
        if (!row) throw notFound('UserGroupVO', msg.uuid);
        return { inventory: groupInventory(row) };
      },
    },
    DeleteUserGroup: {
      async run(msg) {
        await db.delete(userGroups).where(eq(userGroups.uuid, msg.uuid));
        return {};
      },
    },
    AddUserToGroup: {
      async check(msg) {
        sameAccount(await userOf(msg.userUuid, 'userUuid'), await groupOf(msg.groupUuid, 'groupUuid'), 'the user and the group');
      },
      async run(msg) {
        await db.insert(userGroupUserRefs).values({ userUuid: msg.userUuid, groupUuid: msg.groupUuid }).onConflictDoNothing();
        return {};
      },
    },
    RemoveUserFromGroup: {
      async run(msg) {
        await db.delete(userGroupUserRefs).where(and(eq(userGroupUserRefs.userUuid, msg.userUuid), eq(userGroupUserRefs.groupUuid, msg.groupUuid)));
        return {};
      },
    },
    CreatePolicy: {
      check: async (msg, call) => nameClash(policies, account(call), msg.name, 'policy'),
      async run(msg, call) {
        const [row] = await db
          .insert(policies)
          .values({
            uuid: msg.resourceUuid ?? newUuid(),
            accountUuid: account(call),
            name: msg.name,
            description: msg.description ?? null,
            statements: msg.statements,
          })
          .returning();
        return { inventory: policyInventory(row) };
      },
    },
    DeletePolicy: {
      async run(msg) {
        await db.delete(policies).where(eq(policies.uuid, msg.uuid));
        return {};
      },
    },
    AttachPolicyToUser: {
      async check(msg) {
        sameAccount(await userOf(msg.userUuid, 'userUuid'), await policyOf(msg.policyUuid, 'policyUuid'), 'the user and the policy');
      },
      async run(msg) {
        await db.insert(userPolicyRefs).values({ userUuid: msg.userUuid, policyUuid: msg.policyUuid }).onConflictDoNothing();
        return {};
      },
    },
    DetachPolicyFromUser: {
      async run(msg) {
        await db.delete(userPolicyRefs).where(and(eq(userPolicyRefs.userUuid, msg.userUuid), eq(userPolicyRefs.policyUuid, msg.policyUuid)));
        return {};
      },
    },
    // The batch forms (1.1's AttachPoliciesToUser / DetachPoliciesFromUser): all or nothing, duplicates ignored.
    AttachPoliciesToUser: {
      async check(msg) {
        const user = await userOf(msg.userUuid, 'userUuid');
        for (const uuid of new Set(msg.policyUuids)) sameAccount(user, await policyOf(uuid, 'policyUuids'), 'the user and the policy');
      },
      async run(msg) {
        const uuids = [...new Set(msg.policyUuids)];
        await db
          .insert(userPolicyRefs)
          .values(uuids.map((policyUuid) => ({ userUuid: msg.userUuid, policyUuid })))
          .onConflictDoNothing();
        return {};
      },
    },
    DetachPoliciesFromUser: {
      async run(msg) {
        await db.delete(userPolicyRefs).where(and(eq(userPolicyRefs.userUuid, msg.userUuid), inArray(userPolicyRefs.policyUuid, msg.policyUuids)));
        return {};
      },
    },
    AttachPolicyToUserGroup: {
      async check(msg) {
        sameAccount(await groupOf(msg.groupUuid, 'groupUuid'), await policyOf(msg.policyUuid, 'policyUuid'), 'the group and the policy');
      },
      async run(msg) {
        await db.insert(userGroupPolicyRefs).values({ groupUuid: msg.groupUuid, policyUuid: msg.policyUuid }).onConflictDoNothing();
        return {};
      },
    },
    DetachPolicyFromUserGroup: {
      async run(msg) {
        await db.delete(userGroupPolicyRefs).where(and(eq(userGroupPolicyRefs.groupUuid, msg.groupUuid), eq(userGroupPolicyRefs.policyUuid, msg.policyUuid)));
        return {};
      },
    },
    ShareResource: {
      async check(msg) {
        if (!msg.toPublic && !msg.accountUuids?.length) throw argErr('name accountUuids to share with, or set toPublic');
        if (msg.accountUuids?.length) {
          const found = await db.select({ uuid: accounts.uuid }).from(accounts).where(inArray(accounts.uuid, msg.accountUuids));
          const known = new Set(found.map((a) => a.uuid));
          const missing = msg.accountUuids.find((u) => !known.has(u));
          if (missing) throw notFound('AccountVO', missing, 'accountUuids');
        }
      },
      async run(msg, call) {
        const refs = await db.select().from(accountResourceRefs).where(inArray(accountResourceRefs.resourceUuid, msg.resourceUuids));
        const byUuid = new Map(refs.map((r) => [r.resourceUuid, r]));
        const receivers: Array<string | null> = [...(msg.toPublic ? [null] : []), ...(msg.accountUuids ?? [])];
        const values = msg.resourceUuids.flatMap((resourceUuid) => {
          const ref = byUuid.get(resourceUuid);
          return receivers.map((receiver) => ({
            ownerAccountUuid: ref?.accountUuid ?? account(call),
            receiverAccountUuid: receiver,
            toPublic: receiver === null,
            resourceUuid,
            resourceType: ref?.resourceType ?? 'Unknown',
          }));
        });
        await db.transaction(async (tx) => {
          // One record per (resource, receiver): a repeated share replaces the earlier one.
          for (const v of values) {
            await tx
              .delete(sharedResources)
              .where(
                and(
                  eq(sharedResources.resourceUuid, v.resourceUuid),
                  v.toPublic ? eq(sharedResources.toPublic, true) : eq(sharedResources.receiverAccountUuid, v.receiverAccountUuid!),
                ),
              );
          }
          if (values.length) await tx.insert(sharedResources).values(values);
          await tx
            .update(accountResourceRefs)
            .set({ isShared: true, lastOpDate: new Date() })
            .where(inArray(accountResourceRefs.resourceUuid, msg.resourceUuids));
        });
        return {};
      },
    },
    RevokeResourceSharing: {
      async run(msg) {
        const which = msg.all
          ? undefined
          : sql`(${msg.toPublic ? sql`to_public` : sql`FALSE`} OR receiver_account_uuid = ANY(${sql.param(msg.accountUuids ?? [])}::text[]))`;
        await db.execute(
          sql`DELETE FROM shared_resources WHERE resource_uuid = ANY(${sql.param(msg.resourceUuids)}::text[])${which ? sql` AND ${which}` : sql``}`,
        );
        await db.execute(
          sql`UPDATE account_resource_refs r SET is_shared = FALSE WHERE resource_uuid = ANY(${sql.param(msg.resourceUuids)}::text[])
              AND NOT EXISTS (SELECT 1 FROM shared_resources s WHERE s.resource_uuid = r.resource_uuid)`,
        );
        return {};
      },
    },
    UpdateQuota: {
      async check(msg) {
        if (!(msg.name in QUOTA_DEFAULTS)) throw argErr(`unknown quota[${msg.name}]; quotas are ${Object.keys(QUOTA_DEFAULTS).join(', ')}`);
        if (!(await identity.findAccount(msg.identityUuid))) throw notFound('AccountVO', msg.identityUuid, 'identityUuid');
      },
      async run(msg) {
        const [row] = await db
          .insert(quotas)
          .values({ uuid: newUuid(), identityUuid: msg.identityUuid, name: msg.name, value: msg.value })
          .onConflictDoUpdate({ target: [quotas.identityUuid, quotas.name], set: { value: msg.value, lastOpDate: new Date() } })
          .returning();
        return { inventory: { name: row.name, identityUuid: row.identityUuid, identityType: row.identityType, value: row.value, ...dates(row) } };
      },
    },
    GetAccountQuotaUsage: {
      async run(msg) {
        if (!(await identity.findAccount(msg.uuid))) throw notFound('AccountVO', msg.uuid);
        const [used, total] = await Promise.all([quotaUsage(db, msg.uuid), quotaLimits(db, msg.uuid)]);
        return { usages: Object.keys(QUOTA_DEFAULTS).map((name) => ({ name, total: total[name], used: used[name] })) };
      },
    },
    CheckApiPermission: {
      async run(msg, call) {
        const session = call.session!;
        const user = msg.userUuid ?? session.userUuid;
        const out: Record<string, 'Allow' | 'Deny'> = {};
        for (const name of msg.apiNames) {
          const p = app.permissions.permissionOf(name);
          let ok = Boolean(p) && (!p!.adminOnly || session.accountType === 'SystemAdmin');
          if (ok && user) ok = (await app.permissions.policyDecision(user, p!.action)) === 'Allow';
          out[name] = ok ? 'Allow' : 'Deny';
        }
        return { inventory: out };
      },
    },
  });
}
