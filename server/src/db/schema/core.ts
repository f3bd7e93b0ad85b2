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

/**
 * Garbage collector jobs: pending host-side work, persisted so it survives restarts. `status = Idle` rows are
 * claimed with one conditional UPDATE (so a job runs at most once at a time across server processes); a dead
 * node's jobs lose their owner (FK ON DELETE SET NULL) and are adopted by the others.
 */
export const gcJobs = pgTable(
  'gc_jobs',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    runner: text('runner').notNull(),
    context: jsonb('context').notNull(),
    /** Idle | Processing | Done */
    status: text('status').notNull().default('Idle'),
    /** TimeBased | EventBased */
    type: text('type').notNull(),
    managementNodeUuid: text('management_node_uuid').references(() => managementNodes.uuid, { onDelete: 'set null' }),
    /** The resource whose events (host reconnected, host deleted…) trigger the job. */
    resourceUuid: text('resource_uuid'),
    intervalMs: integer('interval_ms').notNull(),
    nextRunAt: ts('next_run_at').notNull(),
    attempts: integer('attempts').notNull().default(0),
    lastError: jsonb('last_error'),
    /** Succeeded | Cancelled, once Done */
    result: text('result'),
    createDate: ts('create_date').notNull().defaultNow(),
    lastOpDate: ts('last_op_date').notNull().defaultNow(),
  },
  (t) => [index('gc_jobs_due_idx').on(t.status, t.nextRunAt), index('gc_jobs_resource_idx').on(t.resourceUuid)],
);
