// Domain modules: the unit a feature is built in. A module declares the services it uses (`needs`) and the ones
// it sets (`provides`), and registers its inventories, handlers, cascade nodes, settings and timers through a
// narrow DomainContext — never through the App. The composition root (app.ts) orders the modules by their needs
// and fails at start on a service nobody provides or on modules that need each other in a circle.
import type { FastifyInstance } from 'fastify';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { Db } from '../db/index.js';
import type { Services } from '../services.js';
import type { AgentClient } from '../agent-client/index.js';
import type { Cascade } from './cascade.js';
import type { EventBus } from './events.js';
import type { GarbageCollector } from './gc.js';
import type { GlobalConfigService } from './global-config.js';
import type { Handler, Handlers } from './handlers.js';
import type { JobService } from './jobs.js';
import type { LockManager } from './locks.js';
import type { Permissions } from './permissions.js';
import type { TagService } from './tags.js';
import type { InventoryDescriptor } from './query.js';

export type ServiceName = keyof Services;

/** What a module may know of the node it runs in (a subset of the App's options). */
export interface NodeOptions {
  dataDir: string;
  host?: string;
  port?: number;
  /** Base URL of the simulator agent serving simulated hosts, primary and backup storage, virtual routers. */
  simulatorUrl?: string;
  /** Secret the agents expect (`Authorization: Bearer <secret>`). */
  agentSecret?: string;
  /** The console proxy agent (spawn mode) starts on the first console request, not at boot (`npm start`: light when idle). */
  consoleAgentOnDemand?: boolean;
}

/** The shared mechanisms and registries a module works with. */
export interface DomainContext<N extends ServiceName = ServiceName, P extends ServiceName = ServiceName> {
  readonly db: Db;
  readonly locks: LockManager;
  readonly events: EventBus;
  readonly globalConfig: GlobalConfigService;
  readonly gc: GarbageCollector;
  readonly cascade: Cascade;
  readonly agents: AgentClient;
  readonly jobs: JobService;
  readonly permissions: Permissions;
  /** System and user tags: known system tags, tag writes (core/tags.ts). */
  readonly tags: TagService;
  /** This management node. */
  readonly nodeUuid: string;
  readonly options: Readonly<NodeOptions>;
  /** No other management node can use this database (embedded PGlite, or `npm start`'s own PostgreSQL). */
  readonly soleNode: boolean;
  /** The URL this node serves at ('' until it listens). */
  readonly url: string;
  /** Raw HTTP routes outside the spec (e.g. the console page's static files); API operations go through addHandlers. */
  readonly http: FastifyInstance;

  /** A service of another module (declared in `needs`) or of this one (declared in `provides`, once provided). */
  use<K extends N | P>(name: K): Services[K];
  /** Sets a service this module declared in `provides`. */
  provide<K extends P>(name: K, impl: Services[K]): void;

  addInventory(d: InventoryDescriptor<any>): void;
  addHandlers(h: Handlers): void;
  /** The handler registered for an operation (e.g. to check an API's own preconditions). */
  handlerOf(operationId: string): Handler<any> | undefined;
  /** Work once the database and settings are ready, before serving (e.g. seeding rows); in module order. */
  onBoot(fn: () => Promise<void>): void;
  /** Work when the node joins its cluster, before it serves. */
  onJoin(fn: () => Promise<void>): void;
  /** Work once the node serves at `url` (its port is known). */
  onListen(fn: (url: string) => Promise<void>): void;
  /** Work when the node stops gracefully, after the jobs drained and before the database closes. */
  onLeave(fn: () => Promise<void>): void;
  /** Runs `fn` every `ms()` in a background context while the node runs; errors are logged, never fatal. */
  every(name: string, ms: () => number, fn: () => Promise<unknown>): void;
  /**
   * A small read that rarely changes (an offering, an image), reused while none of its tables changed on any
   * node (core/read-memo.ts). The value is shared: read-only.
   */
  remembered<T>(key: string, read: () => Promise<T>): Promise<T>;
  /**
   * Whether `table` has any row, remembered the same way: a hook that looks for rows of a table that is empty in most
   * clouds (EIPs, security group members…) costs no statement per call until the table is written.
   */
  anyRows(table: PgTable): Promise<boolean>;
}

export interface DomainModule<N extends ServiceName = any, P extends ServiceName = any> {
  /** The folder's name (`vm`, `virtual-router`…): messages and the boundary check use it. */
  name: string;
  needs: readonly N[];
  provides: readonly P[];
  register(ctx: DomainContext<N, P>): void;
}

/** Declares a module; `needs`/`provides` type what `ctx.use`/`ctx.provide` accept inside `register`. */
export function defineDomain<const N extends ServiceName = never, const P extends ServiceName = never>(m: {
  name: string;
  needs?: readonly N[];
  provides?: readonly P[];
  register(ctx: DomainContext<N, P>): void;
}): DomainModule<N, P> {
  return { name: m.name, needs: m.needs ?? [], provides: m.provides ?? [], register: m.register };
}

export class DomainWiringError extends Error {}

/**
 * The modules in an order where every module comes after the providers of its needs (otherwise the given order).
 * Throws on a service two modules provide, a need nobody provides, or modules that need each other in a circle.
 */
export function orderModules(modules: readonly DomainModule[]): DomainModule[] {
  const providerOf = new Map<string, DomainModule>();
  for (const m of modules) {
    for (const s of m.provides) {
      const other = providerOf.get(s);
      if (other) throw new DomainWiringError(`service '${s}' is provided by both domain '${other.name}' and domain '${m.name}'`);
      providerOf.set(s, m);
    }
  }
  for (const m of modules) {
    for (const s of m.needs) {
      if (!providerOf.has(s)) throw new DomainWiringError(`domain '${m.name}' needs service '${s}' that no domain provides`);
    }
  }
  const ordered: DomainModule[] = [];
  const state = new Map<DomainModule, 'visiting' | 'done'>();
  const visit = (m: DomainModule, path: DomainModule[]) => {
    if (state.get(m) === 'done') return;
    if (state.get(m) === 'visiting') {
      const circle = [...path.slice(path.indexOf(m)), m].map((x) => x.name).join(' → ');
      throw new DomainWiringError(`domains need each other in a circle: ${circle}`);
    }
    state.set(m, 'visiting');
    for (const s of m.needs) {
      const p = providerOf.get(s)!;
      if (p !== m) visit(p, [...path, m]);
    }
    state.set(m, 'done');
    ordered.push(m);
  };
  for (const m of modules) visit(m, []);
  return ordered;
}

/** The shared part of every module's context (everything but use/provide). */
export type SharedContext = Omit<DomainContext, 'use' | 'provide'>;

/**
 * Registers the modules in dependency order, each with its own context whose `use`/`provide` are checked against
 * its declaration (also later, when a handler calls `use`). `services` is filled as modules provide.
 */
export function registerModules(modules: readonly DomainModule[], shared: SharedContext, services: Partial<Services>): Map<string, DomainContext> {
  const contexts = new Map<string, DomainContext>();
  for (const m of orderModules(modules)) {
    const allowed = new Set<string>([...m.needs, ...m.provides]);
    const ctx: DomainContext = Object.create(shared);
    ctx.use = (name) => {
      if (!allowed.has(name)) throw new DomainWiringError(`domain '${m.name}' uses service '${name}' without declaring it in needs`);
      const s = services[name];
      if (s === undefined) throw new DomainWiringError(`domain '${m.name}' uses service '${name}' before it is provided`);
      return s as Services[typeof name];
    };
    ctx.provide = (name, impl) => {
      if (!m.provides.includes(name)) throw new DomainWiringError(`domain '${m.name}' provides service '${name}' without declaring it in provides`);
      services[name] = impl;
    };
    contexts.set(m.name, ctx);
    m.register(ctx);
    for (const s of m.provides as ServiceName[]) {
      if (services[s] === undefined) throw new DomainWiringError(`domain '${m.name}' declares service '${s}' in provides but did not provide it`);
    }
  }
  return contexts;
}
