import type { DomainContext } from '../core/domain.js';
import { formatDate } from '../core/dates.js';
import { err } from '../core/errors.js';
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
