// Replies that are not ZStack JSON (the console page's HTML). A synchronous handler returns a RawReply and the
// router sends it as it is, instead of `{...reply, success: true}`; operations whose 200 response has no
// `application/json` content have no JSON schema to check replies against. Errors stay ZStack ErrorCode JSON.
import type { FastifyReply } from 'fastify';
import type { SpecOperation } from './spec.js';

export class RawReply {
  constructor(
    readonly body: string | Buffer,
    readonly contentType: string,
    readonly headers: Record<string, string> = {},
    readonly status = 200,
  ) {}
}

/** True when the operation's 200 response is JSON (every ZStack API; not the console page). */
export function repliesJson(doc: Record<string, any>, op: Pick<SpecOperation, 'pointer'>): boolean {
  let node: any = doc;
  for (const part of op.pointer.replace(/^#\//, '').split('/')) {
    node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return Boolean(node?.responses?.['200']?.content?.['application/json']);
}

/** Sends `result` if it is a RawReply (true), else leaves the reply alone (false). */
export function sendRaw(reply: FastifyReply, result: unknown): boolean {
  if (!(result instanceof RawReply)) return false;
  reply.code(result.status).headers(result.headers).type(result.contentType).send(result.body);
  return true;
}
