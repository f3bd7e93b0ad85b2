// The management server: opens the database, applies migrations, wires the shared mechanisms and the domain
// modules, and serves the routes generated from the spec. One App = one management node.
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import { getTableName, sql } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { migrate, openDatabase, type Database, type Db } from './db/index.js';
import { retryTransactions } from './db/retry.js';
import { Cascade } from './core/cascade.js';
import { backgroundContext, currentContext, runInContext } from './core/context.js';
import { parseDuration } from './core/duration.js';
import { ApiError, argErr, describeError, errorCode, scrubText } from './core/errors.js';
import { EventBus } from './core/events.js';
import { GlobalConfigService } from './core/global-config.js';
import type { Handler, Handlers } from './core/handlers.js';
import { newUuid } from './core/ids.js';
import { MAX_TIMEOUT_MS } from './core/input.js';
import { JobService } from './core/jobs.js';
import { LockManager } from './core/locks.js';
import { installApiLog, loggerOptions } from './core/log.js';
import { QueryEngine, type InventoryDescriptor } from './core/query.js';
import { registerRpc } from './core/rpc.js';
import { AdmissionQueue } from './core/admission.js';
import { registerRoutes, sendError } from './core/router.js';
import { listOperations, loadSpec, type SpecOperation } from './core/spec.js';
import { Permissions } from './core/permissions.js';
import { TagService } from './core/tags.js';
import { registerModules, type DomainContext, type NodeOptions, type SharedContext } from './core/domain.js';
import type { IdentityService } from './identity/index.js';
import { domains } from './domains.js';
import type { Services } from './services.js';
import { AgentClient } from './agent-client/index.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadZStackProperties, type PropertyTimeouts } from './core/api-timeouts.js';
import { GarbageCollector } from './core/gc.js';
import { legacyReadHandlers } from './core/legacy-reads.js';
import { specValueHandlers } from './core/spec-values.js';
import { bridgeEvents } from './core/event-bridge.js';
import { registerDocs } from './docs/index.js';

/** The longest URL (414 beyond) and the most header bytes (431 beyond) a request may have. */
const MAX_URL_BYTES = 16 * 1024;
const MAX_HEADERS_BYTES = 16 * 1024;
/** How long `close` lets a periodic task's running tick finish before closing the database under it. */
const CLOSE_WAITS_FOR_TICKS_MS = 5_000;

export interface AppOptions extends NodeOptions {
  /** Real PostgreSQL; without it the embedded PGlite database under `dataDir` is used. */
  databaseUrl?: string;
  /** Check every successful reply against the spec (tests). */
  validateResponses?: boolean;
  /**
   * Structured logs (pino): `true` = `ZSTACK_LOG_LEVEL`, pretty on a terminal (core/log.ts); or pino options (level,
   * stream); default off.
   */
  logger?: boolean | { level?: string; stream?: NodeJS.WritableStream };
  /** `zstack.properties` with `ApiTimeout.*` lines (default: `<dataDir>/zstack.properties` when it exists). */
  propertiesFile?: string;
  /** No other management node can use this database (`npm start`'s embedded PostgreSQL, held by the data directory's lock). */
  soleNode?: boolean;
}

export class App {
  readonly events = new EventBus();
  readonly query = new QueryEngine();
  readonly cascade = new Cascade();
  readonly handlers = new Map<string, Handler<any>>();
  readonly nodeUuid = newUuid();
  readonly doc = loadSpec();
  readonly operations: SpecOperation[] = listOperations(this.doc);
  readonly db: Db;
  readonly locks: LockManager;
  readonly jobs: JobService;
  /** Calls in admission and the rate they are answered at (core/admission.ts: load shedding). */
  readonly admission = new AdmissionQueue();
  readonly globalConfig: GlobalConfigService;
  readonly permissions: Permissions;
  /** System and user tags (core/tags.ts). */
  readonly tags: TagService;
  readonly gc: GarbageCollector;
  readonly http: FastifyInstance;
  readonly agents: AgentClient;
  /** Timeouts set in zstack.properties (v1.1 syntax). */
  propertyTimeouts: PropertyTimeouts = { apis: new Map(), agentPaths: new Map(), warnings: [] };
  /**
   * The services the domain modules provided (core/domain.ts), for the composition root and tests; a module
   * reaches another's service only through `ctx.use` of what it declared.
   */
  readonly services = {} as Services;
  /** The periodic tasks (`every`): each one's next tick, or the tick running now (close waits for it). */
  private periodic: Array<{ timer?: NodeJS.Timeout; running?: Promise<void> }> = [];
  /** Aborted by `close`: a running tick's agent calls and waits stop instead of holding the shutdown. */
  private stopping = new AbortController();
  private bootHooks: Array<() => Promise<void>> = [];
  private contexts = new Map<string, DomainContext>();
  private joinHooks: Array<() => Promise<void>> = [];
  private listenHooks: Array<(url: string) => Promise<void>> = [];
  private leaveHooks: Array<() => Promise<void>> = [];
  private closeBridge?: () => Promise<void>;
  private closed = false;
  url = '';

  private constructor(
    readonly database: Database,
    readonly options: AppOptions,
  ) {
    this.db = retryTransactions(database.db);
    this.locks = new LockManager(database, { soleProcess: options.soleNode });
    this.jobs = new JobService(this.db, this.nodeUuid);
    this.globalConfig = new GlobalConfigService(this.db, this.events);
    this.permissions = new Permissions(this.db, this.doc, this.operations);
    this.tags = new TagService(this.database, this.query, this.doc);
    this.gc = new GarbageCollector(this.db, this.nodeUuid, this.globalConfig, this.events);
    this.agents = new AgentClient(options.agentSecret, (path) => this.propertyTimeouts.agentPaths.get(path));
    this.http = Fastify({
      logger: options.logger === true ? loggerOptions() : (options.logger ?? false),
      // Fastify's own per-request lines are off: core/log.ts writes one line per API call.
      logController: new LogController({ disableRequestLogging: true }),
      // The log's reqId: the caller's X-Request-Id when it is a plain token (the SDK sends one per call), else ours.
      genReqId: (req) => {
        const given = req.headers['x-request-id'];
        return typeof given === 'string' && /^[\w.:-]{1,64}$/.test(given) ? given : newUuid();
      },
      bodyLimit: 8 * 1024 * 1024,
      // Transport limits are ours to answer in ZStack's error shape (setupHttp): Node's own parser only stops what
      // is far past them (its 431 is answered by clientErrorHandler, still in that shape).
      http: { maxHeaderSize: 4 * MAX_HEADERS_BYTES },
      routerOptions: { maxParamLength: MAX_URL_BYTES },
      frameworkErrors: (e, _req, reply) =>
        void (reply as FastifyReply).code(400).send({ error: errorCode('SYS.1007', `the request's URL is malformed (${e.code ?? 'bad URL'})`) }),
      clientErrorHandler: (e, socket) => {
        const status = (e as { code?: string }).code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
        const body = JSON.stringify({
          error: errorCode('SYS.1007', status === 431 ? `the request's headers exceed ${MAX_HEADERS_BYTES} bytes` : 'the request is malformed'),
        });
        if (socket.writable) {
          socket.end(
            `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
          );
        } else socket.destroy();
      },
    });
    installApiLog(this.http);
    this.http.addHook('onRequest', (req, reply, done) => {
      reply.header('x-request-id', req.id);
      done();
    });
  }

  static async create(options: AppOptions): Promise<App> {
    const database = await openDatabase({ url: options.databaseUrl, dataDir: options.dataDir });
    try {
      await migrate(database);
      const app = new App(database, options);
      await app.init();
      return app;
    } catch (e) {
      await database.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * A small read that rarely changes (an offering, an image), reused while none of its tables changed on any node —
   * only in a call that synced with the other nodes on arrival (db/perf/read-cache.ts); otherwise it reads. The value is
   * shared: read-only.
   */
  remembered<T>(key: string, read: () => Promise<T>): Promise<T> {
    return this.database.perf.read(currentContext()?.changesSynced, key, 1000, read);
  }

  /** Whether `table` has a row: a remembered read (see `remembered`), so one statement until the table is written. */
  anyRows(table: PgTable): Promise<boolean> {
    return this.remembered(
      `anyRows:${getTableName(table)}`,
      async () =>
        (
          await this.db
            .select({ one: sql`1` })
            .from(table)
            .limit(1)
        ).length > 0,
    );
  }

  /** The context a domain module registered with (tests and tools call a domain's functions with it). */
  contextOf(moduleName: string): DomainContext {
    const ctx = this.contexts.get(moduleName);
    if (!ctx) throw new Error(`no domain module named '${moduleName}'`);
    return ctx;
  }

  /** The identity module's service: authenticates every call. */
  get identity(): IdentityService {
    return this.services.identity;
  }

  /** Work a domain needs done once the database and settings are ready, before serving (e.g. seeding rows). */
  onBoot(fn: () => Promise<void>): void {
    this.bootHooks.push(fn);
  }

  addHandlers(h: Handlers): void {
    for (const [name, handler] of Object.entries(h)) this.handlers.set(name, handler as Handler<any>);
  }

  addInventory(d: InventoryDescriptor): void {
    this.query.register(d);
  }

  /** Runs `fn` every `ms` in a background context; errors are logged, never fatal. */
  every(name: string, ms: () => number, fn: () => Promise<unknown>): void {
    // One slot per task (not one handle kept per tick: a 1 s task would pile up 86,400 handles a day).
    const task: { timer?: NodeJS.Timeout; running?: Promise<void> } = {};
    // A period longer than a Node timer can wait runs at that longest wait (a longer delay would fire at once).
    const schedule = () => {
      if (!this.closed) task.timer = setTimeout(tick, Math.min(ms(), MAX_TIMEOUT_MS)).unref();
    };
    const tick = () => {
      task.timer = undefined;
      if (this.closed) return;
      task.running = (async () => {
        const ctx = backgroundContext(name);
        ctx.signal = AbortSignal.any([ctx.signal, this.stopping.signal]);
        try {
          await runInContext(ctx, fn);
        } catch (e) {
          if (!this.stopping.signal.aborted) console.error(`[${name}]`, describeError(e));
        }
      })().finally(() => {
        task.running = undefined;
        schedule();
      });
    };
    this.periodic.push(task);
    schedule();
  }

  /** What every domain module works with (core/domain.ts); `use`/`provide` are added per module. */
  private sharedContext(): SharedContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const app = this;
    return {
      db: this.db,
      locks: this.locks,
      events: this.events,
      globalConfig: this.globalConfig,
      gc: this.gc,
      cascade: this.cascade,
      agents: this.agents,
      jobs: this.jobs,
      permissions: this.permissions,
      tags: this.tags,
      nodeUuid: this.nodeUuid,
      options: this.options,
      soleNode: this.database.kind === 'pglite' || !!this.options.soleNode,
      get url() {
        return app.url;
      },
      http: this.http,
      addInventory: (d) => this.addInventory(d),
      addHandlers: (h) => this.addHandlers(h),
      handlerOf: (operationId) => this.handlers.get(operationId),
      onBoot: (fn) => this.onBoot(fn),
      onJoin: (fn) => void this.joinHooks.push(fn),
      onListen: (fn) => void this.listenHooks.push(fn),
      onLeave: (fn) => void this.leaveHooks.push(fn),
      every: (name, ms, fn) => this.every(name, ms, fn),
      remembered: (key, read) => this.remembered(key, read),
      anyRows: (table) => this.anyRows(table),
    };
  }

  private defineCoreConfig(): void {
    const gc = this.globalConfig;
    gc.define({
      category: 'rest',
      name: 'completedApi.expiredPeriod',
      type: 'seconds',
      defaultValue: '10800',
      min: 1,
      description: 'Seconds a finished API job stays pollable',
    });
    gc.define({
      category: 'rest',
      name: 'expiredApi.scanInterval',
      type: 'seconds',
      defaultValue: '3600',
      min: 1,
      description: 'Seconds between purges of expired API jobs',
    });
    // One timeout per API (release notes §3): category apiTimeout, name = API name, default from the spec.
    for (const op of this.operations) {
      if (op.x.kind === 'poll') continue;
      gc.define({
        category: 'apiTimeout',
        name: op.operationId,
        type: 'duration',
        defaultValue: op.x.timeout,
        min: 1000,
        // Node timers cannot wait longer (core/input.ts): a longer timeout would fire at once.
        max: MAX_TIMEOUT_MS,
        description: `Timeout of API ${op.operationId} (e.g. 30m, 6h, 2d or milliseconds)`,
      });
    }
  }

  /**
   * Effective timeout of one call. Precedence: the X-API-Timeout header › a value set with UpdateGlobalConfig
   * (category apiTimeout) › zstack.properties › the API's default from the spec.
   */
  timeoutOf(op: SpecOperation, headerSeconds?: number): number {
    if (headerSeconds !== undefined) return headerSeconds * 1000;
    if (this.globalConfig.isDefault('apiTimeout', op.operationId)) {
      const fromProperties = this.propertyTimeouts.apis.get(op.operationId);
      if (fromProperties !== undefined) return fromProperties;
    }
    return this.globalConfig.getMs('apiTimeout', op.operationId);
  }

  private loadProperties(): void {
    const file = this.options.propertiesFile ?? join(this.options.dataDir, 'zstack.properties');
    if (!existsSync(file)) {
      if (this.options.propertiesFile) throw new Error(`zstack.properties not found at ${file}`);
      return;
    }
    this.propertyTimeouts = loadZStackProperties(file, new Set(this.operations.map((o) => o.operationId)));
    for (const w of this.propertyTimeouts.warnings) console.warn(`[config] ${w}`);
  }

  private async init(): Promise<void> {
    this.defineCoreConfig();
    this.loadProperties();
    this.contexts = registerModules(domains, this.sharedContext(), this.services);
    // 1.1's legacy Get/List/Search reads: one handler for all, over the descriptors the domains registered.
    this.addHandlers(legacyReadHandlers(this.operations, this.query, this.db));
    // Reads of the types and strategies the spec declares (GetHypervisorTypes…).
    this.addHandlers(specValueHandlers(this.operations));

    await this.globalConfig.load();
    for (const hook of this.bootHooks) await runInContext(backgroundContext('boot'), hook);
    this.assertEveryOperationServed();
    this.setupHttp();
  }

  /** Operations of the spec that nothing serves (must be empty: checked at start and by a test). */
  unservedOperations(): string[] {
    return this.operations
      .filter((op) =>
        op.x.kind === 'query' || op.x.legacy
          ? !this.query.has(op.x.query ?? op.x.legacy!.inventory)
          : op.x.kind !== 'poll' && !this.handlers.has(op.operationId),
      )
      .map((op) => op.operationId);
  }

  private assertEveryOperationServed(): void {
    const missing = this.unservedOperations();
    if (missing.length && process.env.ZSTACK_ALLOW_UNSERVED !== 'true') {
      console.warn(`[app] operations without a handler (they answer SYS.1014): ${missing.join(', ')}`);
    }
  }

  private setupHttp(): void {
    const http = this.http;
    // Upstream clients may POST with no body at all; an empty JSON body is "no body", not an error.
    http.removeContentTypeParser('application/json');
    http.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
      const text = String(body).trim();
      if (!text) return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch (e) {
        done(argErr(`the body is not valid JSON: ${(e as Error).message}`) as unknown as Error, undefined);
      }
    });
    http.setErrorHandler((e, _req, reply) => {
      if (e instanceof ApiError) return sendError(reply, e);
      const fe = e as { statusCode?: number; code?: string; message: string };
      if (fe.statusCode && fe.statusCode < 500) {
        return void reply.code(fe.statusCode).send({ error: errorCode('SYS.1007', scrubText(fe.message)) });
      }
      sendError(reply, e);
    });
    // URLs over 16 KB (414) and headers over 16 KB (431), refused in ZStack's error shape before any routing.
    http.addHook('onRequest', async (req, reply) => {
      if (req.url.length > MAX_URL_BYTES) {
        return reply.code(414).send({ error: errorCode('SYS.1007', `the request's URL is longer than ${MAX_URL_BYTES} bytes`) });
      }
      let headerBytes = 0;
      for (const h of req.raw.rawHeaders) headerBytes += h.length + 2;
      if (headerBytes > MAX_HEADERS_BYTES) {
        return reply.code(431).send({ error: errorCode('SYS.1007', `the request's headers exceed ${MAX_HEADERS_BYTES} bytes`) });
      }
    });
    http.setNotFoundHandler((req, reply) => {
      reply.code(404).send({ error: errorCode('SYS.1003', `no api mapping to ${req.method} ${req.url.split('?')[0]}`) });
    });
    http.get('/zstack/openapi.json', async (_req, reply) => reply.send(this.doc));
    registerDocs(http, this.doc);
    registerRoutes(http, {
      doc: this.doc,
      operations: this.operations,
      handlers: this.permissions.withOwnership(this.tags.withTags(this.handlers, this.operations, this.permissions), (name) =>
        this.query.has(name) ? this.query.descriptor(name).table : undefined,
      ),
      jobs: this.jobs,
      query: this.query,
      db: this.db,
      authenticate: (h) => this.identity.authenticate(h),
      timeoutOf: (op, s) => this.timeoutOf(op, s),
      authorize: (op, session, msg) => this.permissions.authorize(op, session, msg),
      validateResponses: this.options.validateResponses,
      admission: this.admission,
    });
    registerRpc(http, { doc: this.doc, operations: this.operations, jobs: this.jobs });
  }

  /** Joins the cluster of management nodes (the modules' join work: membership, background loops). */
  private async join(): Promise<void> {
    // A sole node (npm start's embedded database) has no other node to tell: no listening connection.
    if (this.database.pool && !this.options.soleNode) this.closeBridge = await bridgeEvents(this.database.pool, this.events, this.nodeUuid);
    // A setting changed on another node: re-read it from the database.
    this.events.on('globalConfig.updated', () => this.globalConfig.reload());
    for (const hook of this.joinHooks) await hook();
    this.every(
      'api-job-purge',
      () => this.globalConfig.getMs('rest', 'expiredApi.scanInterval'),
      () => this.jobs.purge(this.globalConfig.getMs('rest', 'completedApi.expiredPeriod')),
    );
  }

  async listen(): Promise<string> {
    await this.join();
    this.url = await this.http.listen({ host: this.options.host ?? '127.0.0.1', port: this.options.port ?? 8080 });
    for (const hook of this.listenHooks) await hook(this.url);
    return this.url;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.periodic) clearTimeout(t.timer);
    this.stopping.abort();
    await this.http.close();
    await this.jobs.drain();
    // A tick that is running (aborted above) still uses the database and the locks: it may finish first, for a
    // while (its own budget is the internal timeout, far too long to hold a shutdown).
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.periodic.map((t) => t.running)), new Promise((r) => (wait = setTimeout(r, CLOSE_WAITS_FOR_TICKS_MS)))]);
    clearTimeout(wait);
    await this.closeBridge?.();
    await this.locks.close();
    for (const hook of this.leaveHooks) await hook();
    await this.database.close();
  }

  /** Simulates a crash: stops serving and drops the database connection without finishing jobs or leaving. */
  async crash(): Promise<void> {
    this.closed = true;
    for (const t of this.periodic) clearTimeout(t.timer);
    await this.http.close().catch(() => undefined);
    await this.closeBridge?.().catch(() => undefined);
    await this.locks.close().catch(() => undefined);
    await this.database.close().catch(() => undefined);
  }
}

export { parseDuration };
