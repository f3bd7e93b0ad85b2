import { and, eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { formatDate } from '../core/dates.js';
import { argErr, err } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { globalConfigs, managementNodes } from '../db/schema/index.js';

export const VERSION = '1.1.0';

type ConfigRow = typeof globalConfigs.$inferSelect;
type NodeRow = typeof managementNodes.$inferSelect;

export const globalConfigInventory = (c: ConfigRow) => ({
  id: c.id,
  name: c.name,
  category: c.category,
  description: c.description ?? undefined,
  defaultValue: c.defaultValue,
  value: c.value,
});

export const globalConfigDescriptor: InventoryDescriptor<ConfigRow> = {
  name: 'GlobalConfigInventory',
  table: globalConfigs,
  fields: fieldsFromTable(globalConfigs),
  defaultSort: 'id',
  toInventories: async (rows) => rows.map(globalConfigInventory),
};

export const managementNodeDescriptor: InventoryDescriptor<NodeRow> = {
  name: 'ManagementNodeInventory',
  table: managementNodes,
  fields: fieldsFromTable(managementNodes),
  defaultSort: 'joinDate',
  toInventories: async (rows) =>
    rows.map((n) => ({ uuid: n.uuid, hostName: n.hostName, joinDate: formatDate(n.joinDate)!, heartBeat: formatDate(n.heartBeat)! })),
};

export function managementHandlers(app: DomainContext) {
  return defineHandlers({
    GetVersion: { run: async () => ({ version: VERSION }) },
    GetGlobalConfig: {
      async run(msg) {
        const def = app.globalConfig.resolve(msg.category, msg.name);
        const [row] = await app.db
          .select()
          .from(globalConfigs)
          .where(and(eq(globalConfigs.category, def.category), eq(globalConfigs.name, def.name)));
        if (!row) throw argErr(`Unable to find GlobalConfig[category: ${msg.category}, name: ${msg.name}]`);
        return { inventory: globalConfigInventory(row) };
      },
    },
    // 1.1 listed its global properties as "name: value"; an allow-list of this node's settings, never a secret.
    GetGlobalProperty: {
      run: async () => ({
        properties: [
          `managementNodeUuid: ${app.nodeUuid}`,
          `version: ${VERSION}`,
          `ZSTACK_HOST: ${app.options.host ?? '127.0.0.1'}`,
          `ZSTACK_PORT: ${app.options.port ?? 8080}`,
          `ZSTACK_DATA_DIR: ${app.options.dataDir}`,
          `soleNode: ${app.soleNode}`,
        ],
      }),
    },
    UpdateGlobalConfig: {
      async check(msg, call) {
        if (call.session?.accountType !== 'SystemAdmin') throw err('ID.1002', 'only an admin account can change global configuration');
        const def = app.globalConfig.resolve(msg.category, msg.name);
        if (msg.value !== undefined) app.globalConfig.check(def, msg.value);
      },
      // Without a value (optional in 1.1) the setting is left as it is.
      run: async (msg) => ({
        inventory: globalConfigInventory(await app.globalConfig.update(msg.category, msg.name, msg.value ?? app.globalConfig.get(msg.category, msg.name))),
      }),
    },
  });
}
