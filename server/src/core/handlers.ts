// What a domain module provides for an API: an optional `check` (runs before the 202, so bad requests get a
// direct 4xx like upstream's API interceptors) and `run` (the work; inside the job for asynchronous APIs). What
// `check` returns is handed to `run` (`checked`): the rows or spec it had to compute are not computed twice. The
// handoff stays in this process (never stored with the job); `run` without a check (a handler called directly)
// gets `undefined` and computes them itself.
import type { OperationId, ParamsOf, ReplyOf } from '@zstack-ts/openapi/helpers';
import type { CallContext } from './context.js';

export type Message<K extends OperationId> = ParamsOf<K> & { systemTags?: string[]; userTags?: string[] };
export type Reply<K extends OperationId> = Omit<ReplyOf<K>, 'success'>;

export interface Handler<K extends OperationId, Checked = any> {
  check?(msg: Message<K>, call: CallContext): Promise<Checked>;
  run(msg: Message<K>, call: CallContext, checked?: Checked): Promise<Reply<K>>;
}

export type Handlers = { [K in OperationId]?: Handler<K> };

/** Identity helper that keeps each handler typed by its operationId. */
export const defineHandlers = (h: Handlers): Handlers => h;

/**
 * The check → run handoff: runs `check` (in `call`) and returns the run that follows it, carrying what the check
 * found; the run may happen later, in another context (an asynchronous API's job).
 */
export async function checkThenRun<K extends OperationId>(
  handler: Handler<K>,
  msg: Message<K>,
  call: CallContext,
): Promise<(runCall: CallContext) => Promise<Reply<K>>> {
  const checked = handler.check ? await handler.check(msg, call) : undefined;
  return (runCall) => handler.run(msg, runCall, checked);
}
