// Row → inventory mappings of the console domain: ConsoleProxyAgentInventory (queryable) and ConsoleInventory (the
// reply of RequestConsoleAccess).
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { consoleProxies, consoleProxyAgents } from '../db/schema/index.js';

export type AgentRow = typeof consoleProxyAgents.$inferSelect;
export type ConsoleProxyRow = typeof consoleProxies.$inferSelect;

export function agentInventory(r: AgentRow) {
  return {
    uuid: r.uuid,
    description: r.description ?? undefined,
    managementIp: r.managementIp,
    consoleProxyOverriddenIp: r.consoleProxyOverriddenIp ?? undefined,
    consoleProxyPort: r.consoleProxyPort ?? undefined,
    type: r.type as 'ManagementServerConsoleProxy',
    status: r.status as 'Connecting' | 'Connected' | 'Disconnected',
    state: r.state as 'Enabled' | 'Disabled',
    createDate: formatDate(r.createDate)!,
    lastOpDate: formatDate(r.lastOpDate)!,
  };
}

export const agentDescriptor: InventoryDescriptor<AgentRow> = {
  name: 'ConsoleProxyAgentInventory',
  table: consoleProxyAgents,
  fields: fieldsFromTable(consoleProxyAgents, {
    exclude: ['secret', 'agentUrl', 'hostKey', 'overriddenPort', 'deployMode', 'scheme', 'reconnectRequested', 'reconnectHandled'],
  }),
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(agentInventory),
};

/** `origin`: the base URL the caller reached this server at; with it the reply carries the console page's URL. */
export function consoleInventory(p: ConsoleProxyRow, origin?: string) {
  return {
    scheme: p.scheme as 'ws' | 'wss',
    targetScheme: 'vnc' as const,
    hostname: p.proxyHostname,
    port: p.proxyPort,
    token: p.token,
    expiredDate: formatDate(p.expiredDate)!,
    ...(origin ? { url: consolePageUrl(origin, p) } : {}),
  };
}

/** The browser console page of this server (GetConsolePage) for the token: open it and the console is there. */
export function consolePageUrl(origin: string, p: Pick<ConsoleProxyRow, 'token' | 'proxyHostname' | 'proxyPort' | 'scheme'>): string {
  const q = new URLSearchParams({ token: p.token, host: p.proxyHostname, port: String(p.proxyPort) });
  if (p.scheme !== 'ws') q.set('scheme', p.scheme);
  return `${origin}/zstack/console?${q}`;
}
