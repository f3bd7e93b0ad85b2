import { index, pgTable, text } from 'drizzle-orm/pg-core';
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
