// Reads that answer lists the spec declares (`x-zstack.values`, resolved by the generator from the enums the domains
// declare: hypervisor, storage and network types, allocator strategies): one handler for all of them.
import type { Handler, Handlers } from './handlers.js';
import type { SpecOperation } from './spec.js';

export function specValueHandlers(operations: SpecOperation[]): Handlers {
  const handlers: Record<string, Handler<never>> = {};
  for (const op of operations) {
    const values = op.x.values;
    if (!values) continue;
    handlers[op.operationId] = { run: async () => structuredClone(values) as never };
  }
  return handlers as Handlers;
}
