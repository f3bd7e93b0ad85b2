// What a command handler sees and returns.
import type { BodyOf, HandlerResult, OperationId, TargetKind } from './protocol.js';

export interface CommandContext<B> {
  operationId: OperationId;
  path: string;
  body: B;
  /** Kind of resource the target uuid names. */
  targetKind: TargetKind;
  /** X-Zstack-Target-Uuid, else the body field the spec names for connect commands, else ''. */
  target: string;
  /** Fires when the caller's budget runs out or the caller goes away; the handler must stop its work. */
  signal: AbortSignal;
  /** Epoch ms at which the budget runs out; undefined when the caller sent no X-Zstack-Timeout-Ms. */
  deadline?: number;
}

export type Ctx<O extends OperationId> = CommandContext<BodyOf<O>>;
export type Handler<O extends OperationId> = (ctx: Ctx<O>) => Promise<HandlerResult<O>>;
export type HandlerMap = { [O in OperationId]?: Handler<O> };

/** Fields a kind adds to every reply of its targets (backup storage capacities). */
export type ReplyDecorator = (target: string) => Promise<Record<string, unknown>>;

/** Optional layer run before each command of a target (the simulator's fault knobs). */
export interface CommandInterceptor {
  /**
   * May delay (honouring the signal), throw DropConnection, or return a failure message that is sent instead of
   * running the handler.
   */
  before(kind: TargetKind, target: string, path: string, signal: AbortSignal): Promise<string | undefined>;
}

/** A piece of an agent: its handlers plus what it must release on close. */
export interface AgentPart {
  handlers: HandlerMap;
  decorators?: Partial<Record<TargetKind, ReplyDecorator>>;
  close?(): Promise<void>;
}
