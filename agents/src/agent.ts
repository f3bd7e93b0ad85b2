// Builds and starts one agent process: picks the parts for the kind and backend, starts the HTTP server.
import type { AddressInfo } from 'node:net';
import type { BackupStorageBackend } from './backup-storage/backend.js';
import { FilesystemBackupStorage } from './backup-storage/filesystem-backend.js';
import { backupStoragePart } from './backup-storage/handlers.js';
import { DownloadTracker } from './backup-storage/progress.js';
import { SimulatedBackupStorages } from './backup-storage/simulated-backend.js';
import { consoleProxyOptionsFromEnv, consoleProxyPart, type ConsoleProxyOptions } from './console-proxy/handlers.js';
import { kvmPart } from './kvm/handlers.js';
import { LibvirtKvmBackend } from './kvm/libvirt-backend.js';
import { SimulatorKvmBackend } from './kvm/simulator-backend.js';
import type { AgentPart, HandlerMap, ReplyDecorator } from './lib/handler.js';
import type { TargetKind } from './lib/protocol.js';
import { RecordStore } from './lib/records.js';
import { createAgentServer, type AgentLog } from './lib/server.js';
import { simulatorControlPart, type SimulatorParts } from './simulator/control.js';
import { FaultStore } from './simulator/faults.js';
import { SimulatedHosts } from './simulator/hosts.js';
import { cephPart, iscsiPart, SimulatedStorageClusters } from './simulator/storage-clusters.js';
import { VncConsoles } from './simulator/vnc.js';
import { virtualRouterPart } from './virtual-router/handlers.js';
import { VirtualRouters } from './virtual-router/state.js';
import { RouterNamespaces } from './network/router-namespace.js';

export const AGENT_KINDS = ['kvm', 'backup-storage', 'virtual-router', 'console-proxy', 'simulator'] as const;
export type AgentKind = (typeof AGENT_KINDS)[number];
export type AgentBackend = 'simulator' | 'libvirt' | 'real';

/** Upstream's ports; `simulator` uses upstream's test web server port. */
export const DEFAULT_PORTS: Record<AgentKind, number> = {
  kvm: 7070,
  'backup-storage': 7171,
  'virtual-router': 7272,
  'console-proxy': 7758,
  simulator: 8989,
};

/** Backends each kind accepts; the first is the default. */
export const BACKENDS: Record<AgentKind, readonly AgentBackend[]> = {
  kvm: ['simulator', 'libvirt'],
  'backup-storage': ['real', 'simulator'],
  'virtual-router': ['real', 'simulator'],
  'console-proxy': ['real'],
  simulator: ['simulator'],
};

export interface StartAgentOptions {
  kind: AgentKind;
  /** 0 = an ephemeral port; default: the kind's upstream port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Required: callers must send `Authorization: Bearer <secret>`. */
  secret: string;
  backend?: AgentBackend;
  /** Real backup storage: paths must lie inside it. Simulator: where real downloads land. libvirt: capacity dir. */
  storageRoot?: string;
  /** Address simulated VNC consoles listen on (default 127.0.0.1). */
  vncHost?: string;
  /** Commands remembered per target (default 200). */
  recordLimit?: number;
  /** Structured log lines (aborted commands, internal errors); silent by default. */
  log?: AgentLog;
  /** console-proxy: the WebSocket listener (defaults from ZSTACK_CONSOLE_PROXY_* env, then port 4900). */
  consoleProxy?: ConsoleProxyOptions;
}

export interface RunningAgent {
  kind: AgentKind;
  backend: AgentBackend;
  url: string;
  port: number;
  /** In-process access to simulator state, for tests (undefined unless simulating). */
  simulator?: SimulatorParts;
  close(): Promise<void>;
}

export async function startAgent(opts: StartAgentOptions): Promise<RunningAgent> {
  const backend = opts.backend ?? BACKENDS[opts.kind][0];
  if (!BACKENDS[opts.kind].includes(backend)) {
    throw new Error(`agent kind ${opts.kind} supports backends ${BACKENDS[opts.kind].join(', ')}, not ${backend}`);
  }
  const simulating = backend === 'simulator';
  const records = new RecordStore(opts.recordLimit);
  const faults = simulating ? new FaultStore() : undefined;
  const sim: SimulatorParts | undefined = faults ? { faults, records } : undefined;
  const serves = (k: AgentKind) => opts.kind === k || opts.kind === 'simulator';
  const parts: AgentPart[] = [agentPart(records)];

  if (serves('kvm')) {
    if (simulating) {
      const hosts = new SimulatedHosts(new VncConsoles(opts.vncHost ?? '127.0.0.1'));
      if (sim) sim.hosts = hosts;
      parts.push(kvmPart(new SimulatorKvmBackend(hosts, faults)));
      // A KVM host's agent serves the virtual routers it runs (kept in memory when simulating).
      if (opts.kind === 'kvm') parts.push(virtualRouterPart(new VirtualRouters(true)));
    } else {
      const routerNamespaces = new RouterNamespaces();
      parts.push(
        kvmPart(new LibvirtKvmBackend({ storageRoot: opts.storageRoot, routers: routerNamespaces, ...(opts.vncHost ? { vncHost: opts.vncHost } : {}) })),
      );
      // The host's virtual routers are namespaces here: this agent serves their /virtualrouter/* commands.
      parts.push(virtualRouterPart(new VirtualRouters(true), routerNamespaces));
    }
  }
  if (serves('backup-storage')) {
    const downloads = new DownloadTracker();
    let bs: BackupStorageBackend;
    if (simulating) {
      const storages = new SimulatedBackupStorages({ storageRoot: opts.storageRoot });
      if (sim) Object.assign(sim, { backupStorages: storages, downloads });
      bs = storages;
    } else {
      bs = new FilesystemBackupStorage({ storageRoot: opts.storageRoot });
    }
    parts.push(backupStoragePart(bs, downloads));
  }
  if (serves('virtual-router')) {
    const routers = new VirtualRouters(simulating);
    if (sim) sim.routers = routers;
    parts.push(virtualRouterPart(routers));
  }
  if (opts.kind === 'simulator' && sim) {
    // Ceph clusters and iSCSI servers exist only simulated (no real agent of theirs is deployed yet).
    const clusters = new SimulatedStorageClusters();
    sim.storageClusters = clusters;
    parts.push(cephPart(clusters), iscsiPart(clusters));
  }
  if (opts.kind === 'console-proxy') {
    parts.push(consoleProxyPart({ host: opts.host, ...consoleProxyOptionsFromEnv(), ...opts.consoleProxy, log: opts.log }));
  }
  if (sim) parts.push(simulatorControlPart(sim));

  const handlers: HandlerMap = Object.assign({}, ...parts.map((p) => p.handlers));
  const decorators: Partial<Record<TargetKind, ReplyDecorator>> = Object.assign({}, ...parts.map((p) => p.decorators ?? {}));
  const closeParts = () => Promise.all(parts.map((p) => p.close?.())).then(() => {});
  let app: Awaited<ReturnType<typeof createAgentServer>>;
  try {
    app = await createAgentServer({ secret: opts.secret, handlers, records, interceptor: faults, decorators, log: opts.log });
    await app.listen({ port: opts.port ?? DEFAULT_PORTS[opts.kind], host: opts.host ?? '127.0.0.1' });
  } catch (err) {
    await closeParts();
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    kind: opts.kind,
    backend,
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    simulator: sim,
    close: () => (closing ??= app.close().then(closeParts)),
  };
}

/** What every agent answers: its command records. */
function agentPart(records: RecordStore): AgentPart {
  return {
    handlers: {
      AgentRecords: async (ctx) => ({ records: records.listAll(ctx.body.targetUuid, ctx.body.clear) }),
    },
  };
}
