import { boolean, pgTable, text } from 'drizzle-orm/pg-core';
import { dates } from './common.js';

export const zones = pgTable('zones', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  state: text('state').notNull().default('Enabled'),
  type: text('type').notNull().default('zstack'),
  isDefault: boolean('is_default').notNull().default(false),
  ...dates(),
});
