// Console proxy agent: the control commands (establish/check/delete a token, connect, ping, echo) over the one
// WebSocket → VNC listener in proxy.ts.
import { readFileSync } from 'node:fs';
import type { AgentPart } from '../lib/handler.js';
import { AgentError } from '../lib/errors.js';
import { ConsoleProxy, type ConsoleProxyOptions } from './proxy.js';
import { TokenError } from './tokens.js';

export { ConsoleProxy, DEFAULT_PROXY_PORT, CLOSE } from './proxy.js';
export type { ConsoleProxyOptions } from './proxy.js';

/**
 * Listener settings from the environment (used when the caller passes none):
 * ZSTACK_CONSOLE_PROXY_PORT (default 4900, 0 = ephemeral), ZSTACK_CONSOLE_PROXY_HOST (default 127.0.0.1),
 * ZSTACK_CONSOLE_PROXY_PUBLIC_HOSTNAME, ZSTACK_CONSOLE_PROXY_TLS_CERT and ZSTACK_CONSOLE_PROXY_TLS_KEY (PEM files).
 */
export function consoleProxyOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ConsoleProxyOptions {
  const opts: ConsoleProxyOptions = {};
  const port = env.ZSTACK_CONSOLE_PROXY_PORT;
  if (port !== undefined && port !== '') {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`invalid ZSTACK_CONSOLE_PROXY_PORT ${port}`);
    opts.port = n;
  }
  if (env.ZSTACK_CONSOLE_PROXY_HOST) opts.host = env.ZSTACK_CONSOLE_PROXY_HOST;
  if (env.ZSTACK_CONSOLE_PROXY_PUBLIC_HOSTNAME) opts.publicHostname = env.ZSTACK_CONSOLE_PROXY_PUBLIC_HOSTNAME;
  const cert = env.ZSTACK_CONSOLE_PROXY_TLS_CERT;
  const key = env.ZSTACK_CONSOLE_PROXY_TLS_KEY;
  if (Boolean(cert) !== Boolean(key)) throw new Error('ZSTACK_CONSOLE_PROXY_TLS_CERT and ZSTACK_CONSOLE_PROXY_TLS_KEY go together');
  if (cert && key) opts.tls = { cert: readFileSync(cert), key: readFileSync(key) };
  return opts;
}

export interface ConsoleProxyPart extends AgentPart {
  /** The listener and its tokens (tests, in-process callers). */
  proxy: ConsoleProxy;
}

/**
 * The console proxy part. The WebSocket listener starts at once; if it cannot listen (port taken), establish and
 * ping fail with the reason and try again, so the agent recovers once the port is free.
 */
export function consoleProxyPart(opts: ConsoleProxyOptions = consoleProxyOptionsFromEnv()): ConsoleProxyPart {
  let managementNodeUuid: string | undefined;
  const proxy = new ConsoleProxy(opts);
  proxy.ensureListening().catch(() => {}); // reported by ping/establish
  const listening = async () => {
    try {
      return await proxy.ensureListening();
    } catch (err) {
      throw new AgentError((err as Error).message);
    }
  };
  return {
    proxy,
    handlers: {
      ConsoleEcho: async () => ({}),
      ConsoleConnect: async (ctx) => {
        managementNodeUuid = ctx.body.managementNodeUuid ?? (ctx.target || undefined);
        await listening();
        return {};
      },
      ConsolePing: async () => {
        const proxyPort = await listening();
        return {
          ...(managementNodeUuid ? { managementNodeUuid } : {}),
          proxyPort,
          scheme: proxy.scheme,
          tokens: proxy.tokens.availableCount(),
          connections: proxy.connectionCount,
        };
      },
      ConsoleEstablish: async (ctx) => {
        const proxyPort = await listening();
        const { proxyHostname, ...input } = ctx.body;
        let record;
        try {
          record = proxy.tokens.establish(input);
        } catch (err) {
          if (err instanceof TokenError) throw new AgentError(err.message);
          throw err;
        }
        const hostname = proxyHostname || proxy.advertisedHostname;
        return {
          token: record.token,
          proxyPort,
          ...(hostname ? { proxyHostname: hostname } : {}),
          scheme: proxy.scheme,
          expiresAt: record.expiresAt,
          idleTimeoutMs: record.idleTimeoutMs,
        };
      },
      ConsoleCheck: async (ctx) => {
        const { token, vmUuid, targetHostname, targetPort } = ctx.body;
        const record = proxy.tokens.get(token);
        const connections = proxy.connectionsOf(token);
        const refusal = proxy.tokens.refusal(token);
        let reason = refusal?.reason;
        if (!reason && record) {
          if (vmUuid !== undefined && record.vmUuid !== vmUuid) reason = 'token is bound to another VM';
          else if ((targetHostname !== undefined && record.targetHostname !== targetHostname) || (targetPort !== undefined && record.targetPort !== targetPort))
            reason = 'token points at another VNC target';
        }
        if (!reason && proxy.listenError) reason = `console proxy is not listening: ${proxy.listenError}`;
        return {
          available: reason === undefined,
          ...(reason ? { reason } : {}),
          ...(record ? { vmUuid: record.vmUuid, expiresAt: record.expiresAt } : {}),
          connections,
        };
      },
      ConsoleDelete: async (ctx) => proxy.revoke({ token: ctx.body.token, vmUuid: ctx.body.vmUuid }),
    },
    close: () => proxy.close(),
  };
}
