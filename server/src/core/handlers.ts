// What a domain module provides for an API: an optional `check` (runs before the 202, so bad requests get a
// direct 4xx like upstream's API interceptors) and `run` (the work; inside the job for asynchronous APIs).
import type { OperationId, ParamsOf, ReplyOf } from '@zstack-ts/openapi/helpers';
import type { CallContext } from './context.js';

export type Message<K extends OperationId> = ParamsOf<K> & { systemTags?: string[]; userTags?: string[] };
export type Reply<K extends OperationId> = Omit<ReplyOf<K>, 'success'>;

export interface Handler<K extends OperationId> {
  check?(msg: Message<K>, call: CallContext): Promise<void>;
  run(msg: Message<K>, call: CallContext): Promise<Reply<K>>;
}

export type Handlers = { [K in OperationId]?: Handler<K> };

/** Identity helper that keeps each handler typed by its operationId. */
export const defineHandlers = (h: Handlers): Handlers => h;
