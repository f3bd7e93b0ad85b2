import type { App } from '../app.js';
import { formatDate } from '../core/dates.js';
import { err, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { accounts } from '../db/schema/index.js';

type AccountRow = typeof accounts.$inferSelect;

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

export function identityHandlers(app: App) {
  const { identity } = app;
  const adminOnly = (call: { session?: { accountType: string } }) => {
    if (call.session?.accountType !== 'SystemAdmin') throw err('ID.1002', 'only an admin account can do this');
  };
  return defineHandlers({
    LogInByAccount: {
      async run(msg, call) {
        const s = await identity.logIn(msg.accountName, msg.password, call.clientIp);
        return {
          inventory: {
            uuid: s.uuid,
            accountUuid: s.accountUuid,
            userUuid: s.userUuid,
            userType: s.userType,
            expiredDate: formatDate(s.expiredDate)!,
            createDate: formatDate(s.createDate)!,
          },
        };
      },
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
  });
}
