// Virtual router agent: load balancer listeners (upstream 1.1 virtualrouter/plugins/lb.py, /lb/refresh and
// /lb/delete). Each listener is one haproxy configuration, keyed by listener uuid; a refresh without backend
// addresses removes the listener, as upstream does. The router's state keeps what was applied with the configuration
// text (the simulator shows it). On a kvm host's namespace router the configuration is also written to
// `<router dir>/haproxy/<lb>-<listener>.cfg` and, when the host has haproxy, run inside the router's namespace
// (reloaded with -sf on change, killed on removal); without haproxy the files are all there is.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import type { HandlerMap } from '../lib/handler.js';
import type { Schemas } from '../lib/protocol.js';
import { RouterNamespaces, type RouterNamespace } from '../network/router-namespace.js';
import type { RouterNetworks, VirtualRouters } from './state.js';

export type LbTO = Schemas['LbTO'];
export type LbApplied = Schemas['LbApplied'];

declare module './state.js' {
  interface VirtualRouterState {
    /** Listener uuid → what the router applies for it. */
    lb?: Map<string, LbApplied>;
  }
}

/** 1.1's global config defaults (conf/globalConfig/lb.xml), for parameters a command leaves out. */
const DEFAULTS: Record<string, string> = {
  connectionIdleTimeout: '60',
  healthyThreshold: '2',
  healthCheckInterval: '5',
  healthCheckTarget: 'tcp:default',
  healthCheckTimeout: '2',
  unhealthyThreshold: '2',
  maxConnection: '5000',
  balancerAlgorithm: 'roundrobin',
};

const SAFE_TOKEN = /^[A-Za-z0-9:._-]{1,64}$/;

/** The listener's haproxy configuration (upstream lb.py's template; backends on the instance port). */
export function haproxyConfig(to: LbTO): string {
  const p: Record<string, string> = { ...DEFAULTS };
  for (const param of to.parameters) {
    const i = param.indexOf('::');
    if (i > 0 && SAFE_TOKEN.test(param.slice(i + 2))) p[param.slice(0, i)] = param.slice(i + 2);
  }
  const [, port] = p.healthCheckTarget.split(':');
  const checkPort = !port || port === 'default' ? String(to.instancePort) : port;
  const servers = to.nicIps.map(
    (ip) =>
      `    server nic-${ip} ${ip}:${to.instancePort} check port ${checkPort} inter ${p.healthCheckInterval}s rise ${p.healthyThreshold} fall ${p.unhealthyThreshold}`,
  );
  return [
    'global',
    `    maxconn ${p.maxConnection}`,
    '    log 127.0.0.1 local1',
    '    daemon',
    '',
    `listen ${to.listenerUuid}`,
    `    mode ${to.mode}`,
    `    timeout client ${p.connectionIdleTimeout}s`,
    `    timeout server ${p.connectionIdleTimeout}s`,
    '    timeout connect 60s',
    `    timeout check ${p.healthCheckTimeout}s`,
    `    balance ${p.balancerAlgorithm}`,
    `    bind ${to.vip}:${to.loadBalancerPort}`,
    ...servers,
    '',
  ].join('\n');
}

/** haproxy in a namespace router: the configuration files, and the process when the host has haproxy. */
class NamespaceHaproxy {
  private present?: boolean;

  private async hasHaproxy(): Promise<boolean> {
    if (this.present === undefined)
      this.present = await run('haproxy', ['-v']).then(
        () => true,
        () => false,
      );
    return this.present;
  }

  private files(router: RouterNamespace, to: LbTO) {
    const base = join(router.dir, 'haproxy', `${to.lbUuid}-${to.listenerUuid}`);
    return { conf: `${base}.cfg`, pid: `${base}.pid` };
  }

  async write(router: RouterNamespace, applied: LbApplied, signal: AbortSignal): Promise<void> {
    const { conf, pid } = this.files(router, applied);
    await mkdir(join(router.dir, 'haproxy'), { recursive: true });
    await writeFile(conf, applied.haproxyConfig);
    if (!(await this.hasHaproxy())) return;
    const old = (await readFile(pid, 'utf8').catch(() => '')).trim();
    const reload = /^\d+$/.test(old) ? ['-sf', old] : [];
    await run('ip', ['netns', 'exec', router.namespace, 'haproxy', '-D', '-f', conf, '-p', pid, ...reload], signal);
  }

  async remove(router: RouterNamespace, to: LbTO): Promise<void> {
    const { conf, pid } = this.files(router, to);
    const old = (await readFile(pid, 'utf8').catch(() => '')).trim();
    if (/^\d+$/.test(old)) {
      try {
        process.kill(Number(old));
      } catch {
        // already gone
      }
    }
    await rm(conf, { force: true });
    await rm(pid, { force: true });
  }
}

export function loadBalancerHandlers(routers: VirtualRouters, networks?: RouterNetworks): HandlerMap {
  const namespaces = networks instanceof RouterNamespaces ? networks : undefined;
  const haproxy = new NamespaceHaproxy();
  const stateOf = (target: string) => {
    const vr = routers.require(target);
    return (vr.lb ??= new Map());
  };
  const remove = async (target: string, lb: Map<string, LbApplied>, to: LbTO) => {
    if (namespaces) await haproxy.remove(namespaces.of(target), to);
    lb.delete(to.listenerUuid);
  };
  return {
    VirtualRouterRefreshLb: async (ctx) => {
      const lb = stateOf(ctx.target);
      for (const to of ctx.body.lbs) {
        if (to.nicIps.length === 0) {
          await remove(ctx.target, lb, to);
          continue;
        }
        const applied: LbApplied = { ...to, haproxyConfig: haproxyConfig(to) };
        if (namespaces) await haproxy.write(namespaces.of(ctx.target), applied, ctx.signal);
        lb.set(to.listenerUuid, applied);
      }
      return {};
    },
    VirtualRouterDeleteLb: async (ctx) => {
      const lb = stateOf(ctx.target);
      for (const to of ctx.body.lbs) await remove(ctx.target, lb, to);
      return {};
    },
  };
}
