// Console proxy agents (one per management node, zstack-internals.md §3) and the console proxy paths they hold
// (one row per token handed out by RequestConsoleAccess).
import { index, integer, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { dates, ts } from './common.js';
import { managementNodes } from './core.js';

export const consoleProxyAgents = pgTable('console_proxy_agents', {
  /** The management node's uuid: the agent lives and dies with its node. */
  uuid: text('uuid')
    .primaryKey()
    .references(() => managementNodes.uuid, { onDelete: 'cascade' }),
  description: text('description'),
  /** The node's address; what clients are told to connect to unless overridden. */
  managementIp: text('management_ip').notNull(),
  /** UpdateConsoleProxyAgent: the hostname/IP clients are given instead of managementIp. */
  consoleProxyOverriddenIp: text('console_proxy_overridden_ip'),
  /** The WebSocket listener's port: the one it listens on once connected (the configured one before). */
  consoleProxyPort: integer('console_proxy_port'),
  /** The port UpdateConsoleProxyAgent chose for a spawned agent's listener (else `console/proxy.port` applies). */
  overriddenPort: integer('overridden_port'),
  type: text('type').notNull().default('ManagementServerConsoleProxy'),
  /** Connecting | Connected | Disconnected */
  status: text('status').notNull().default('Connecting'),
  /** Enabled | Disabled */
  state: text('state').notNull().default('Enabled'),
  /** spawn (a child process of the node) | ssh (deployed with the deployer) */
  deployMode: text('deploy_mode').notNull().default('spawn'),
  /** The agent's control API. */
  agentUrl: text('agent_url'),
  /** The agent's secret, sealed by the credential vault (host/credentials.ts), so any node can revoke tokens on it. */
  secret: text('secret'),
  /** ws | wss, as the agent reports it. */
  scheme: text('scheme'),
  /** ssh mode: the host key recorded on the first deploy. */
  hostKey: text('host_key'),
  /** Why the last connect or ping failed. */
  lastError: jsonb('last_error'),
  /**
   * Restart requests for the owning node (ReconnectConsoleProxyAgent or UpdateConsoleProxyAgent run by another
   * node): a requester increments `reconnectRequested`; the owner sets `reconnectHandled` to the value it acted on.
   */
  reconnectRequested: integer('reconnect_requested').notNull().default(0),
  reconnectHandled: integer('reconnect_handled').notNull().default(0),
  ...dates(),
});

export const consoleProxies = pgTable(
  'console_proxies',
  {
    uuid: text('uuid').primaryKey(),
    /** No foreign key: when the VM goes, its rows are read (to revoke the tokens) and then deleted (service.ts). */
    vmInstanceUuid: text('vm_instance_uuid').notNull(),
    agentUuid: text('agent_uuid')
      .notNull()
      .references(() => consoleProxyAgents.uuid, { onDelete: 'cascade' }),
    /** The host the VM ran on when the path was made (a VM that moved needs a new path). */
    hostUuid: text('host_uuid'),
    /** The session that asked: a token is handed out again only to the session it was made for. */
    sessionUuid: text('session_uuid'),
    token: text('token').notNull(),
    targetHostname: text('target_hostname').notNull(),
    targetPort: integer('target_port').notNull(),
    proxyHostname: text('proxy_hostname').notNull(),
    proxyPort: integer('proxy_port').notNull(),
    /** ws | wss */
    scheme: text('scheme').notNull(),
    /** Active | Inactive (revoked, or lost with a restarted agent) */
    status: text('status').notNull().default('Active'),
    expiredDate: ts('expired_date').notNull(),
    ...dates(),
  },
  (t) => [index('console_proxies_vm_idx').on(t.vmInstanceUuid, t.status), index('console_proxies_agent_idx').on(t.agentUuid)],
);
