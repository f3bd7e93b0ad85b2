// The one HTTP server factory every agent uses: secret check, body parsing and validation from the spec,
// deadline + abort per command, records, simulator fault layer, JSON errors (never a stack trace).
import type { ErrorObject } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { raceAbort } from './abort.js';
import { AgentError, BadRequestError, CallerGone, DeadlineExceeded, DropConnection, messageOf } from './errors.js';
import type { CommandContext, CommandInterceptor, Handler, HandlerMap, ReplyDecorator } from './handler.js';
import { COMMAND_TARGETS, type CommandOutcome, type OperationId, type TargetKind } from './protocol.js';
import type { RecordStore } from './records.js';
import { bodyValidator, loadProtocol, type OperationSpec } from './spec.js';

export const TARGET_HEADER = 'x-zstack-target-uuid';
export const TIMEOUT_HEADER = 'x-zstack-timeout-ms';

export type AgentLog = (entry: Record<string, unknown>) => void;

export interface AgentServerOptions {
  secret: string;
  handlers: HandlerMap;
  records: RecordStore;
  interceptor?: CommandInterceptor;
  decorators?: Partial<Record<TargetKind, ReplyDecorator>>;
  log?: AgentLog;
}

interface RouteConfig {
  op?: OperationSpec;
}

export async function createAgentServer(opts: AgentServerOptions): Promise<FastifyInstance> {
  if (!opts.secret) throw new Error('an agent secret is required');
  const protocol = loadProtocol();
  const log = opts.log ?? (() => {});
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024 * 1024, // a rebuilt DHCP table for thousands of VMs is a few MB
    forceCloseConnections: true,
  });
  // Bodies are checked by the spec's schemas, compiled once per process (see spec.ts).
  app.setValidatorCompiler(({ schema }) => {
    const validate = bodyValidator(protocol.operations.get((schema as { 'x-operation': OperationId })['x-operation'])!)!;
    return (data) => (validate(data) ? { value: data } : { error: Object.assign(new Error(formatErrors(validate.errors)), { validation: validate.errors }) });
  });

  // An empty body with Content-Type: application/json means "no fields" (echo, ping).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (typeof body === 'string' && body.trim() === '') return done(null, {});
    parseJson(req, body as string, done);
  });

  const expected = digest(`Bearer ${opts.secret}`);
  app.addHook('onRequest', async (request, reply) => {
    if (routeOp(request)?.public) return;
    const given = request.headers.authorization;
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      return reply.code(401).send({ success: false, error: 'unauthorized: missing or wrong agent secret (Authorization: Bearer <secret>)' });
    }
  });
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined || request.body === null) request.body = {};
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    const error = status === 500 ? `internal error: ${err.message}` : `invalid request: ${err.message}`;
    if (status === 500) log({ event: 'internal-error', url: request.url, error: err.message });
    const op = routeOp(request);
    const extra = op ? await decorate(opts.decorators?.[op.target], targetOf(op, request), log) : {};
    return reply.code(status).send({ success: false, error, ...extra });
  });
  app.setNotFoundHandler(async (request, reply) => {
    return reply.code(404).send({ success: false, error: `unknown path: ${request.method} ${request.url}` });
  });

  for (const [operationId, handler] of Object.entries(opts.handlers) as [OperationId, Handler<OperationId>][]) {
    const op = protocol.operations.get(operationId);
    if (!op) throw new Error(`no operation ${operationId} in protocol.yaml`);
    const config: RouteConfig = { op };
    const schema = op.bodySchema ? { body: { 'x-operation': operationId } } : undefined;
    app.post(op.path, { schema, config }, (request, reply) => runCommand(op, handler, request, reply, opts, log));
  }
  return app;
}

async function runCommand(
  op: OperationSpec,
  handler: Handler<OperationId>,
  request: FastifyRequest,
  reply: FastifyReply,
  opts: AgentServerOptions,
  log: AgentLog,
): Promise<void> {
  const started = Date.now();
  const target = targetOf(op, request);
  const timeoutMs = parseTimeout(request.headers[TIMEOUT_HEADER]);
  if (timeoutMs === 'invalid') {
    await reply.code(400).send({ success: false, error: 'invalid request: X-Zstack-Timeout-Ms must be a non-negative integer' });
    return;
  }

  const controller = new AbortController();
  const expire = () => controller.abort(new DeadlineExceeded(`deadline exceeded: ${op.path} did not finish within ${timeoutMs} ms`));
  const timer = timeoutMs === undefined ? undefined : setTimeout(expire, timeoutMs);
  if (timeoutMs === 0) expire();
  // The caller gave up (its own timeout, or it was killed): stop working for nobody.
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort(new CallerGone(`caller closed the connection before ${op.path} finished`));
  };
  reply.raw.on('close', onClose);

  const ctx: CommandContext<unknown> = {
    operationId: op.operationId,
    path: op.path,
    body: request.body,
    targetKind: op.target,
    target,
    signal: controller.signal,
    deadline: timeoutMs === undefined ? undefined : started + timeoutMs,
  };
  const recorded = COMMAND_TARGETS.includes(op.target);
  let status = 200;
  let outcome: CommandOutcome = 'ok';
  let error: string | undefined;
  let body: Record<string, unknown>;
  try {
    const work = async () => {
      if (recorded && opts.interceptor) {
        const failure = await opts.interceptor.before(op.target, target, op.path, controller.signal);
        if (failure !== undefined) throw new AgentError(failure);
      }
      return (handler as (c: CommandContext<unknown>) => Promise<object>)(ctx);
    };
    const result = await raceAbort(work(), controller.signal);
    body = { success: true, ...result };
  } catch (err) {
    if (err instanceof DropConnection) {
      record('dropped', 'connection dropped (simulated disconnect)');
      reply.hijack();
      request.raw.socket.destroy();
      return;
    }
    if (controller.signal.aborted) {
      outcome = 'aborted';
      error = messageOf(controller.signal.reason);
      log({ event: 'command-aborted', path: op.path, target, error });
    } else {
      outcome = 'failed';
      error = messageOf(err);
      if (err instanceof BadRequestError) status = 400;
      else if (!(err instanceof AgentError)) log({ event: 'command-error', path: op.path, target, error });
    }
    body = { success: false, error };
  } finally {
    clearTimeout(timer);
    reply.raw.off('close', onClose);
  }
  Object.assign(body, await decorate(opts.decorators?.[op.target], target, log));
  record(outcome, error);
  if (reply.raw.destroyed) {
    reply.hijack(); // the caller is gone; nothing to send
    return;
  }
  await reply.code(status).send(body);

  function record(outcome: CommandOutcome, error: string | undefined) {
    if (!recorded) return;
    opts.records.add(op.target, {
      target,
      path: op.path,
      body: request.body,
      time: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      outcome,
      ...(error === undefined ? {} : { error }),
    });
  }
}

function routeOp(request: FastifyRequest): OperationSpec | undefined {
  return (request.routeOptions.config as RouteConfig | undefined)?.op;
}

function targetOf(op: OperationSpec, request: FastifyRequest): string {
  const header = request.headers[TARGET_HEADER];
  if (typeof header === 'string' && header !== '') return header;
  if (op.targetFromBody) {
    const value = (request.body as Record<string, unknown> | undefined)?.[op.targetFromBody];
    if (typeof value === 'string') return value;
  }
  return '';
}

function parseTimeout(value: string | string[] | undefined): number | undefined | 'invalid' {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value.trim())) return 'invalid';
  return Number(value.trim());
}

async function decorate(decorator: ReplyDecorator | undefined, target: string, log: AgentLog): Promise<Record<string, unknown>> {
  if (!decorator) return {};
  try {
    return await decorator(target);
  } catch (err) {
    log({ event: 'decorate-error', target, error: messageOf(err) });
    return {};
  }
}

/** Ajv errors as "body/nic/mac must be string", like fastify's own messages. */
function formatErrors(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'body is invalid';
  return `body${e.instancePath} ${e.message ?? 'is invalid'}`;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
