import { boolean, index, pgTable, text } from 'drizzle-orm/pg-core';
import { dates } from './common.js';

// Upstream's SystemTagVO / UserTagVO: a string attached to any resource, named by its uuid and its resource type
// (`VmInstanceVO`…). Rows go with their resource (core/tags.ts installs the deletion trigger on every tagged table).
const tagColumns = () => ({
  uuid: text('uuid').primaryKey(),
  resourceUuid: text('resource_uuid').notNull(),
  resourceType: text('resource_type').notNull(),
  tag: text('tag').notNull(),
});

export const systemTags = pgTable(
  'system_tags',
  {
    ...tagColumns(),
    type: text('type').notNull().default('System'),
    /** Inherent tags are the system's own and cannot be deleted through DeleteTag. */
    inherent: boolean('inherent').notNull().default(false),
    ...dates(),
  },
  (t) => [index('system_tags_resource_idx').on(t.resourceUuid), index('system_tags_tag_idx').on(t.tag)],
);

export const userTags = pgTable(
  'user_tags',
  {
    ...tagColumns(),
    type: text('type').notNull().default('User'),
    ...dates(),
  },
  (t) => [index('user_tags_resource_idx').on(t.resourceUuid), index('user_tags_tag_idx').on(t.tag)],
);
