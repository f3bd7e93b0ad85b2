// A client that talks as 1.1's zstack-cli / apibinding do (zstack-utility 1.1.x apibinding/api.py): POST
// `/zstack/api/` with `{"<message class>": {...every scalar as a string..., "session": {"uuid"}}}` (ASCII JSON),
// then, for an answer that is not `Done`, GET `/zstack/api/result/<uuid>` until it is. The result is a JSON string
// keyed by the reply/event class.
import { createHash } from 'node:crypto';

export interface RpcResult {
  /** The reply/event class the result is keyed by. */
  cls: string;
  reply: any;
  /** The first answer's envelope. */
  envelope: any;
  polls: number;
}

/** The CLI's own conversion: scalars become strings, lists of strings, maps of string lists. */
export function asCliSends(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(asCliSends);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asCliSends(v)]));
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value;
}

const ascii = (text: string) => text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export class Cli11 {
  session?: string;

  constructor(
    readonly url: string,
    readonly path = '/zstack/api/',
  ) {}

  async post(body: string): Promise<{ status: number; json: any }> {
    const res = await fetch(this.url + this.path, { method: 'POST', headers: { 'Content-Type': 'application/json', Connection: 'close' }, body });
    return { status: res.status, json: JSON.parse(await res.text()) };
  }

  async poll(uuid: string): Promise<{ status: number; json: any }> {
    const res = await fetch(`${this.url}/zstack/api/result/${uuid}`, { headers: { 'Content-Type': 'application/json', 'Content-Length': '0' } });
    return { status: res.status, json: JSON.parse(await res.text()) };
  }

  /** One API call with the fields as the CLI sends them; resolves with the reply once `Done`. */
  async call(message: string, fields: Record<string, unknown> = {}, opts: { session?: unknown; raw?: string } = {}): Promise<RpcResult> {
    const msg = { ...(asCliSends(fields) as object), session: opts.session ?? (this.session ? { uuid: this.session } : {}) };
    const first = await this.post(opts.raw ?? ascii(JSON.stringify({ [message]: msg })));
    if (first.status !== 200) throw new Error(`POST answered HTTP ${first.status}`);
    let envelope = first.json;
    let polls = 0;
    const until = Date.now() + 60_000;
    while (envelope.state !== 'Done') {
      if (!envelope.uuid || Date.now() > until) throw new Error(`no result: ${JSON.stringify(envelope)}`);
      await new Promise((r) => setTimeout(r, 20));
      envelope = (await this.poll(envelope.uuid)).json;
      polls++;
    }
    if (typeof envelope.result !== 'string') throw new Error(`result is not a string: ${JSON.stringify(envelope)}`);
    const parsed = JSON.parse(envelope.result);
    const [cls] = Object.keys(parsed);
    return { cls, reply: parsed[cls], envelope: first.json, polls };
  }

  async login(accountName = 'admin', password = 'password'): Promise<RpcResult> {
    const r = await this.call(
      'org.zstack.header.identity.APILogInByAccountMsg',
      {
        accountName,
        password: createHash('sha512').update(password).digest('hex'),
      },
      { session: {} },
    );
    this.session = r.reply.inventory?.uuid;
    return r;
  }
}
