import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, primaryKey, text, unique } from 'drizzle-orm/pg-core';
import { dates, ts } from './common.js';

export const accounts = pgTable('accounts', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull().unique(),
  /** scrypt of the SHA-512 hex digest the client sends; never returned. */
  passwordHash: text('password_hash').notNull(),
  type: text('type').notNull(),
  description: text('description'),
  ...dates(),
});

export const sessions = pgTable(
  'sessions',
  {
    uuid: text('uuid').primaryKey(),
    accountUuid: text('account_uuid')
      .notNull()
      .references(() => accounts.uuid, { onDelete: 'cascade' }),
    userUuid: text('user_uuid').notNull(),
    userType: text('user_type').notNull(),
    expiredDate: ts('expired_date').notNull(),
    createDate: ts('create_date').notNull().defaultNow(),
  },
  (t) => [index('sessions_expired_idx').on(t.expiredDate)],
);

/**
 * Who owns what (upstream's AccountResourceRefVO): one row per resource created through the API, written by the
 * shared create path (core/permissions.ts). `accountUuid` is the owner; `ownerAccountUuid` the same (upstream keeps
 * both); resources without a row belong to nobody but SystemAdmin accounts.
 */
export const accountResourceRefs = pgTable(
  'account_resource_refs',
  {
    resourceUuid: text('resource_uuid').primaryKey(),
    resourceType: text('resource_type').notNull(),
    accountUuid: text('account_uuid')
      .notNull()
      .references(() => accounts.uuid, { onDelete: 'cascade' }),
    ownerAccountUuid: text('owner_account_uuid').notNull(),
    /** 2 = full control (upstream's AccountConstant.RESOURCE_PERMISSION_WRITE). */
    permission: integer('permission').notNull().default(2),
    isShared: boolean('is_shared').notNull().default(false),
    ...dates(),
  },
  (t) => [index('account_resource_refs_account_idx').on(t.accountUuid)],
);

/** Upstream's SharedResourceVO: a resource shared by its owner with one account, or with all (`toPublic`). */
export const sharedResources = pgTable(
  'shared_resources',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ownerAccountUuid: text('owner_account_uuid')
      .notNull()
      .references(() => accounts.uuid, { onDelete: 'cascade' }),
    receiverAccountUuid: text('receiver_account_uuid').references(() => accounts.uuid, { onDelete: 'cascade' }),
    resourceUuid: text('resource_uuid').notNull(),
    resourceType: text('resource_type').notNull(),
    toPublic: boolean('to_public').notNull().default(false),
    ...dates(),
  },
  (t) => [index('shared_resources_receiver_idx').on(t.receiverAccountUuid), index('shared_resources_resource_idx').on(t.resourceUuid)],
);

/** Users of an account (upstream's UserVO); they log in with LogInByUser and act within their account. */
export const users = pgTable(
  'users',
  {
    uuid: text('uuid').primaryKey(),
    accountUuid: text('account_uuid')
      .notNull()
      .references(() => accounts.uuid, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    passwordHash: text('password_hash').notNull(),
    description: text('description'),
    ...dates(),
  },
  (t) => [unique('users_account_name_key').on(t.accountUuid, t.name)],
);

export const userGroups = pgTable(
  'user_groups',
  {
    uuid: text('uuid').primaryKey(),
    accountUuid: text('account_uuid')
      .notNull()
      .references(() => accounts.uuid, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    ...dates(),
  },
  (t) => [index('user_groups_account_idx').on(t.accountUuid)],
);

export const userGroupUserRefs = pgTable(
  'user_group_user_refs',
  {
    userUuid: text('user_uuid')
      .notNull()
      .references(() => users.uuid, { onDelete: 'cascade' }),
    groupUuid: text('group_uuid')
      .notNull()
      .references(() => userGroups.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.userUuid, t.groupUuid] })],
);

/** A policy (upstream's PolicyVO): statements `{name?, effect: Allow|Deny, actions: ["vm:*", ...]}`. */
export const policies = pgTable(
  'policies',
  {
    uuid: text('uuid').primaryKey(),
    accountUuid: text('account_uuid')
      .notNull()
      .references(() => accounts.uuid, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    statements: jsonb('statements').$type<Array<{ name?: string; effect: 'Allow' | 'Deny'; actions: string[] }>>().notNull(),
    ...dates(),
  },
  (t) => [index('policies_account_idx').on(t.accountUuid)],
);

export const userPolicyRefs = pgTable(
  'user_policy_refs',
  {
    userUuid: text('user_uuid')
      .notNull()
      .references(() => users.uuid, { onDelete: 'cascade' }),
    policyUuid: text('policy_uuid')
      .notNull()
      .references(() => policies.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.userUuid, t.policyUuid] })],
);

export const userGroupPolicyRefs = pgTable(
  'user_group_policy_refs',
  {
    groupUuid: text('group_uuid')
      .notNull()
      .references(() => userGroups.uuid, { onDelete: 'cascade' }),
    policyUuid: text('policy_uuid')
      .notNull()
      .references(() => policies.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.groupUuid, t.policyUuid] })],
);

/** Upstream's QuotaVO: a limit per account and quota name (absent rows take the global default). */
export const quotas = pgTable(
  'quotas',
  {
    uuid: text('uuid').primaryKey(),
    identityUuid: text('identity_uuid')
      .notNull()
      .references(() => accounts.uuid, { onDelete: 'cascade' }),
    identityType: text('identity_type').notNull().default('AccountVO'),
    name: text('name').notNull(),
    value: bigint('value', { mode: 'number' }).notNull(),
    ...dates(),
  },
  (t) => [unique('quotas_identity_name_key').on(t.identityUuid, t.name)],
);
