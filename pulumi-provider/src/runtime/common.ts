// What every resource handler of the runtime is, and the helpers they share.
import type { ZStackClient } from '@zstack-ts/sdk';
import { clean, plain, type CheckResult, type DiffResult, type Props } from './util.js';

export interface Ctx {
  /** A logged-in SDK client, made from the stack config or the environment. */
  zs(): Promise<ZStackClient>;
}

export interface Handler {
  check(olds: Props, news: Props): CheckResult;
  diff(id: string, olds: Props, news: Props): DiffResult;
  create(ctx: Ctx, inputs: Props): Promise<{ id: string; outs: Props }>;
  /** `id: ''` means the object is gone (refresh drops it from the state). */
  read(ctx: Ctx, id: string, props: Props): Promise<{ id: string; props: Props }>;
  update(ctx: Ctx, id: string, olds: Props, news: Props): Promise<{ outs: Props }>;
  delete(ctx: Ctx, id: string, props: Props): Promise<void>;
}

/**
 * Thrown when the object was created but a follow-up step failed (a DNS server, a cluster attachment…). The plugin
 * reports it as a partial failure (`ErrorResourceInitFailed`), so the engine keeps the id and properties in the state:
 * nothing is orphaned and the next `pulumi up` continues with an update.
 */
export class ResourceInitError extends Error {
  constructor(
    message: string,
    readonly id: string,
    readonly properties: Props,
    readonly reasons: string[] = [message],
  ) {
    super(message);
    this.name = 'ResourceInitError';
  }
}

/** Outputs: the inputs as given (minus internals), overlaid with the inventory; JSON-safe. */
export function outputsOf(inputs: Props, inventory: object, extra: Props = {}): Props {
  return plain(clean({ ...clean(inputs), ...(inventory as Props), ...extra }));
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
