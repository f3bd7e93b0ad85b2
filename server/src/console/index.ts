// The console domain: RequestConsoleAccess, QueryConsoleProxyAgent, ReconnectConsoleProxyAgent,
// UpdateConsoleProxyAgent, the browser console page (GET /zstack/console + noVNC's files), the `console/*`
// settings, and this node's console proxy agent (started once the node serves, pinged, stopped with the node).
import { eq } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { backgroundContext, runInContext } from '../core/context.js';
import { ApiError, argErr, errorCode, toApiError, type ErrorCode } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { RawReply } from '../core/raw-reply.js';
import { consoleProxyAgents } from '../db/schema/index.js';
import { ConsoleProxyAgents } from './agents.js';
import { agentDescriptor, agentInventory, consoleInventory } from './inventory.js';
import { consolePage, consolePageOptions, registerConsoleAssets } from './page.js';
import { ConsoleService } from './service.js';

declare module '../services.js' {
  interface Services {
    consoles: ConsoleService;
  }
}

/** `0.0.0.0` (upstream's "not overridden") clears the overridden IP. */
const NOT_OVERRIDDEN = new Set(['0.0.0.0', '::', '']);

export const consoleModule = defineDomain({ name: 'console', needs: ['hosts', 'vms'], provides: ['consoles'], register });

function register(app: DomainContext): void {
  const gc = app.globalConfig;
  gc.define({
    category: 'console',
    name: 'vnc.token.timeout',
    type: 'seconds',
    defaultValue: '1800',
    min: 1,
    description: 'Seconds a console token from RequestConsoleAccess can open a connection',
  });
  gc.define({
    category: 'console',
    name: 'proxy.idleTimeout',
    type: 'seconds',
    defaultValue: '60',
    min: 0,
    description: 'Seconds without traffic after which the console proxy closes a console connection (0 = never)',
  });
  // ZSTACK_CONSOLE_PROXY_PORT (also read by the agent itself) changes the default, e.g. 0 for test servers.
  gc.define({
    category: 'console',
    name: 'proxy.port',
    type: 'int',
    defaultValue: process.env.ZSTACK_CONSOLE_PROXY_PORT || '4900',
    min: 0,
    max: 65535,
    description:
      'Port of the console proxy WebSocket listener of every agent without its own port (UpdateConsoleProxyAgent); 0 = any free port. A change restarts those agents',
  });
  gc.define({
    category: 'console',
    name: 'agent.ping.interval',
    type: 'seconds',
    defaultValue: '60',
    min: 1,
    description: 'Seconds between pings of the console proxy agent',
  });
  gc.define({
    category: 'console',
    name: 'agent.deploy.mode',
    type: 'string',
    defaultValue: 'spawn',
    validValues: ['spawn', 'ssh'],
    description:
      'How a management node runs its console proxy agent: spawn = a child process on this machine, ssh = deployed over SSH with the agent deployer (agent.deploy.* settings); applies at the next ReconnectConsoleProxyAgent',
  });
  gc.define({
    category: 'console',
    name: 'agent.deploy.sshHost',
    type: 'string',
    defaultValue: '127.0.0.1',
    description: 'ssh mode: the machine the console proxy agent is deployed on (also the address clients are given unless overridden)',
  });
  gc.define({ category: 'console', name: 'agent.deploy.sshPort', type: 'int', defaultValue: '22', min: 1, max: 65535, description: 'ssh mode: SSH port' });
  gc.define({ category: 'console', name: 'agent.deploy.username', type: 'string', defaultValue: 'root', description: 'ssh mode: SSH user' });
  gc.define({
    category: 'console',
    name: 'agent.deploy.privateKeyFile',
    type: 'string',
    defaultValue: '',
    description: 'ssh mode: a file on the management node holding the SSH private key',
  });
  gc.define({
    category: 'console',
    name: 'agent.deploy.installRoot',
    type: 'string',
    defaultValue: '/var/lib/zstack-ts/console-proxy',
    description: 'ssh mode: where the agent is installed',
  });
  gc.define({
    category: 'console',
    name: 'agent.deploy.agentPort',
    type: 'int',
    defaultValue: '7758',
    min: 1,
    max: 65535,
    description: "ssh mode: port of the agent's control API",
  });

  const agents = new ConsoleProxyAgents(app);
  const consoles = new ConsoleService(app, agents);
  app.provide('consoles', consoles);
  app.addInventory(agentDescriptor);
  consoles.watchVms();

  // The node's agent: started once the node serves (its management node row exists then), stopped with it.
  app.http.addHook('onListen', async () => {
    await runInContext(backgroundContext('console-agent-start'), () => agents.start()).catch((e) =>
      console.error('[console] cannot register the console proxy agent:', toApiError(e).message),
    );
  });
  app.http.addHook('onClose', async () => agents.close());
  app.every(
    'console-agent',
    () => Math.min(1000, gc.getMs('console', 'agent.ping.interval')),
    () => agents.tick(),
  );
  // A new default port moves the agents that have no port of their own.
  app.events.on('globalConfig.updated', async ({ category, name }) => {
    if (category !== 'console' || name !== 'proxy.port') return;
    const row = await agents.get(agents.ownUuid);
    if (row && row.overriddenPort === null && row.deployMode !== 'ssh') {
      await runInContext(backgroundContext('console-agent-restart'), () => agents.connect()).catch((e) => console.warn(`[console] ${toApiError(e).message}`));
    }
  });

  registerConsoleAssets(app.http);

  app.addHandlers(
    defineHandlers({
      RequestConsoleAccess: {
        check: async (msg) => consoles.requireRunning(await app.use('vms').require(msg.vmInstanceUuid, 'vmInstanceUuid')),
        run: async (msg, call) => ({ inventory: consoleInventory(await consoles.requestAccess(msg.vmInstanceUuid, call.session?.uuid), call.origin) }),
      },
      ReconnectConsoleProxyAgent: {
        async run(msg) {
          const known = new Set((await agents.list()).map((a) => a.uuid));
          const uuids = [...new Set(msg.agentUuids ?? [...known])];
          // This node's agent is always known to itself, even before its row exists.
          if (!msg.agentUuids && !known.has(agents.ownUuid)) uuids.push(agents.ownUuid);
          const results: Record<string, true | ErrorCode> = {};
          await Promise.all(
            uuids.map(async (uuid) => {
              results[uuid] =
                known.has(uuid) || uuid === agents.ownUuid
                  ? await agents.reconnect(uuid)
                  : errorCode('SYS.1007', `invalid field[agentUuids], console proxy agent[uuid:${uuid}] not found`);
            }),
          );
          return { inventory: results as any };
        },
      },
      UpdateConsoleProxyAgent: {
        check: async (msg) => {
          const row = await agents.require(msg.uuid);
          if (msg.consoleProxyPort !== undefined && msg.consoleProxyPort !== row.consoleProxyPort && row.deployMode === 'ssh') {
            throw argErr('consoleProxyPort cannot be changed for an agent deployed over SSH (the deployer starts its WebSocket listener on port 4900)');
          }
        },
        async run(msg) {
          const row = await agents.require(msg.uuid);
          const overridden = NOT_OVERRIDDEN.has(msg.consoleProxyOverriddenIp) ? null : msg.consoleProxyOverriddenIp.replace(/^\[|\]$/g, '');
          const portChanges = msg.consoleProxyPort !== undefined && msg.consoleProxyPort !== row.consoleProxyPort;
          await app.db
            .update(consoleProxyAgents)
            .set({
              consoleProxyOverriddenIp: overridden,
              ...(msg.consoleProxyPort !== undefined && row.deployMode !== 'ssh' ? { overriddenPort: msg.consoleProxyPort } : {}),
              lastOpDate: new Date(),
            })
            .where(eq(consoleProxyAgents.uuid, row.uuid));
          if (portChanges) {
            const outcome = await agents.reconnect(row.uuid);
            if (outcome !== true) throw new ApiError(outcome);
          }
          return { inventory: agentInventory(await agents.require(row.uuid)) };
        },
      },
      GetConsolePage: {
        async run(msg) {
          const opts = consolePageOptions({ ...msg, port: String(msg.port) });
          if ('error' in opts) throw argErr(opts.error);
          const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };
          return new RawReply(consolePage(opts), 'text/html; charset=utf-8', headers) as never;
        },
      },
    }),
  );
}
