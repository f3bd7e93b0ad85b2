// A reply body kept as the buffers it was built from. A computed query page is made of rows the row cache already
// holds; copying them into one fresh buffer per reply (~190 KB for 100 VMs) cost more than the rest of sending it:
// glibc grows and trims its heap for each such buffer and the kernel hands out zeroed pages again. A bare fastify
// route serving 160 KB measured 0.12 ms of CPU per request from one long-lived buffer, 0.25-0.31 ms from a fresh copy
// per request, 0.18-0.20 ms from the pieces written corked (bench/README.md, query section, session 11).
import type { FastifyReply } from 'fastify';

export class Chunks {
  readonly length: number;
  private parts: readonly Buffer[];
  private sends = 0;

  constructor(parts: readonly Buffer[]) {
    this.parts = parts;
    let n = 0;
    for (const p of parts) n += p.length;
    this.length = n;
  }

  /**
   * The body as one buffer, made once; the pieces are let go then. A reply sent again (the reply cache answers it)
   * goes out this way: one long-lived buffer is the cheapest to send.
   */
  toBuffer(): Buffer {
    if (this.parts.length !== 1) this.parts = [Buffer.concat(this.parts, this.length)];
    return this.parts[0];
  }

  /** The body's text (a copy: the pieces stay as they are). */
  toString(): string {
    return Buffer.concat(this.parts, this.length).toString();
  }

  /** The pieces to write now: as they are the first time, as one buffer after that. */
  forSending(): readonly Buffer[] {
    return this.sends++ === 0 ? this.parts : [this.toBuffer()];
  }
}

export type ReplyBody = Buffer | string | Chunks;

/** Sends `body` as a 200 reply of `contentType`; `Chunks` are written corked (one writev), never copied. */
export function sendBody(reply: FastifyReply, body: ReplyBody, contentType: string): void {
  if (!(body instanceof Chunks)) return void reply.code(200).header('content-type', contentType).send(body);
  const parts = body.forSending();
  if (parts.length === 1) return void reply.code(200).header('content-type', contentType).send(parts[0]);
  // fastify sends one payload: the pieces go to the response itself. Its onResponse hooks (the access log) still
  // run when the response finishes; the headers set on the reply so far (x-request-id) are sent with these.
  reply.hijack();
  const raw = reply.raw;
  // The caller went away meanwhile: each write would only make an error.
  if (raw.destroyed) return;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value);
  raw.setHeader('content-type', contentType);
  raw.setHeader('content-length', body.length);
  raw.writeHead(200);
  raw.cork();
  for (const p of parts) raw.write(p);
  raw.end();
}
