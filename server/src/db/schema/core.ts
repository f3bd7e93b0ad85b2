// Tables of the core mechanisms: management nodes, API jobs, global configuration.
import { index, integer, json, jsonb, pgTable, serial, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { ts } from './common.js';

export const managementNodes = pgTable('management_nodes', {
  uuid: text('uuid').primaryKey(),
  hostName: text('host_name').notNull(),
  port: integer('port').notNull().default(0),
  joinDate: ts('join_date').notNull().defaultNow(),
  heartBeat: ts('heart_beat').notNull().defaultNow(),
});

export const apiJobs = pgTable(
  'api_jobs',
  {
    uuid: text('uuid').primaryKey(),
    apiName: text('api_name').notNull(),
    request: jsonb('request').notNull(),
    /** processing | done | failed */
    status: text('status').notNull(),
    // json, not jsonb: the reply keeps its key order (inventory before success, as upstream prints it).
    result: json('result'),
    error: jsonb('error'),
    timeoutMs: integer('timeout_ms').notNull(),
    deadline: ts('deadline').notNull(),
    ownerNode: text('owner_node').notNull(),
    sessionUuid: text('session_uuid'),
    webHook: text('web_hook'),
    createDate: ts('create_date').notNull().defaultNow(),
    lastOpDate: ts('last_op_date').notNull().defaultNow(),
  },
  (t) => [index('api_jobs_status_idx').on(t.status, t.ownerNode), index('api_jobs_last_op_idx').on(t.lastOpDate)],
);

export const globalConfigs = pgTable(
  'global_configs',
  {
    id: serial('id').primaryKey(),
    category: text('category').notNull(),
    name: text('name').notNull(),
    description: text('description'),
    defaultValue: text('default_value').notNull(),
    value: text('value').notNull(),
  },
  (t) => [uniqueIndex('global_configs_category_name_idx').on(t.category, t.name)],
);
