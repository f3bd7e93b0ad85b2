// A client that talks the way upstream's Java/Go SDKs do (zstackio/zstack sdk/: ZSClient): every request carries
// `X-JSON-Schema: true` and `Authorization: OAuth <session>`, the body is `{"<parameterName>": {...}}` with every
// field the SDK's action class declares (defaults included), an asynchronous call's 202 `location` is polled with the
// same headers until it is no longer 202. Contract tests use it to replay upstream exchanges exactly.
import { createHash } from 'node:crypto';

export interface Exchange {
  status: number;
  json: any;
  text: string;
}

export class UpstreamSdk {
  session?: string;

  constructor(readonly url: string) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      'X-JSON-Schema': 'true',
      ...(this.session ? { Authorization: `OAuth ${this.session}` } : {}),
      ...extra,
    };
  }

  /** One request, as the SDK sends it (raw body text allowed for bodies JSON.stringify cannot express). */
  async send(method: string, path: string, body?: unknown, opts: { raw?: string; headers?: Record<string, string> } = {}): Promise<Exchange> {
    const hasBody = body !== undefined || opts.raw !== undefined;
    const res = await fetch(this.url + path, {
      method,
      headers: this.headers({ ...(hasBody ? { 'Content-Type': 'application/json; charset=utf-8' } : {}), ...opts.headers }),
      body: opts.raw ?? (body !== undefined ? JSON.stringify(body) : undefined),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  }

  /** The SDK's call: the request, then (on 202) its job polled until it ends. */
  async call(method: string, path: string, body?: unknown, opts: { raw?: string; headers?: Record<string, string> } = {}): Promise<Exchange> {
    const first = await this.send(method, path, body, opts);
    if (first.status !== 202) return first;
    const location = new URL(first.json.location);
    const until = Date.now() + 60_000;
    for (;;) {
      const polled = await this.send('GET', location.pathname);
      if (polled.status !== 202 || Date.now() > until) return polled;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async login(accountName = 'admin', password = 'password'): Promise<Exchange> {
    const digest = createHash('sha512').update(password).digest('hex');
    const r = await this.send('PUT', '/zstack/v1/accounts/login', { logInByAccount: { accountName, password: digest } });
    this.session = r.json?.inventory?.uuid;
    return r;
  }
}
