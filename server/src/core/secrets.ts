// Secret redaction, derived from the spec: a property or parameter marked `x-zstack-secret: true` is published per
// operation as `x-zstack-secrets` (openapi/scripts/conventions.mjs), and everything that keeps or sends a copy of a
// request or reply — the stored job, webhooks, log lines — goes through here. A secret is never stored in clear:
// what an API must keep (SSH passwords, agent secrets) it seals itself (host/credentials.ts); passwords are kept
// as scrypt hashes only.
import type { SecretPaths, SpecOperation } from './spec.js';

export const REDACTED = '*****';

/** A copy of `value` with every dotted path (`*` = any array item or map value) replaced by REDACTED. */
export function redactPaths(value: unknown, paths: readonly string[]): unknown {
  if (!paths.length || !value || typeof value !== 'object') return value;
  let out: unknown = value;
  for (const path of paths) out = redactOne(out, path.split('.'));
  return out;
}

function redactOne(value: unknown, parts: string[]): unknown {
  if (!value || typeof value !== 'object') return value;
  const [head, ...rest] = parts;
  const apply = (v: unknown) => (rest.length ? redactOne(v, rest) : v === undefined || v === null ? v : REDACTED);
  if (Array.isArray(value)) return head === '*' ? value.map(apply) : value;
  const obj = value as Record<string, unknown>;
  if (head === '*') return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, apply(v)]));
  if (!Object.prototype.hasOwnProperty.call(obj, head)) return value;
  return { ...obj, [head]: apply(obj[head]) };
}

/**
 * The message of a call (the body's inner object, plus query and path parameters, as the router builds it) with
 * the operation's secrets redacted: what a stored job or a log line may show.
 */
export function redactMessage(op: Pick<SpecOperation, 'x' | 'secrets'>, msg: unknown): unknown {
  const s: SecretPaths = op.secrets;
  const prefix = op.x.bodyKey ? `${op.x.bodyKey}.` : '';
  const inner = s.request.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length));
  return redactPaths(msg, [...inner, ...s.params]);
}

/** A reply (a job's result, a webhook's body) with the operation's reply secrets redacted. */
export function redactReply(op: Pick<SpecOperation, 'secrets'>, reply: unknown): unknown {
  return redactPaths(reply, op.secrets.reply);
}
