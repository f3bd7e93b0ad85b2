// The interactive API reference at /zstack/docs: Redoc's standalone bundle, served from the local npm install (no CDN;
// the machines this runs on may have no internet), rendering the bundled spec. Every operation shows its summary,
// description (with its default timeout), parameters, request/response schemas and examples. Without JavaScript (or
// without the bundle) the page still lists every operation with its method, path and default timeout.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ERROR_CODES, type ErrorCodeInfo } from '../core/error-codes.js';
import { gettingStartedPage } from './getting-started.js';
import { escapeHtml, htmlPage } from './html.js';
import { findRedocBundle } from './redoc-bundle.mjs';

export { findRedocBundle };

export interface DocsOptions {
  /** URL prefix of the reference (default `/zstack/docs`). */
  prefix?: string;
  /** Page title (default: the spec's `info.title`). */
  title?: string;
  /** The Redoc standalone bundle to serve (default: found in node_modules, see `findRedocBundle`). */
  bundlePath?: string | null;
}

// Redoc shows only the code samples (x-codeSamples, openapi/scripts/samples.mjs) of the languages it is told about.
const SAMPLE_LANGUAGES = [
  { lang: 'curl', label: 'curl' },
  { lang: 'TypeScript', label: 'TypeScript SDK' },
  { lang: 'Shell', label: 'zstack-cli' },
];

interface Row {
  operationId: string;
  method: string;
  path: string;
  summary: string;
  timeout?: string;
  tag?: string;
}

function rowsOf(doc: Record<string, any>): Row[] {
  const rows: Row[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths ?? {})) {
    for (const method of ['get', 'post', 'put', 'delete', 'patch']) {
      const op = item?.[method];
      if (!op?.operationId) continue;
      rows.push({
        operationId: op.operationId,
        method: method.toUpperCase(),
        path: path.split('#')[0],
        summary: op.summary ?? '',
        timeout: op['x-zstack-timeout'],
        tag: op.tags?.[0],
      });
    }
  }
  return rows.sort((a, b) => a.operationId.localeCompare(b.operationId));
}

/** The operations as a plain HTML table: the reference without JavaScript. */
function staticIndex(rows: Row[]): string {
  const body = rows
    .map(
      (r) =>
        `<tr id="static-${escapeHtml(r.operationId)}"><td><code>${escapeHtml(r.operationId)}</code></td><td>${escapeHtml(r.summary)}</td><td><code>${r.method} ${escapeHtml(r.path)}</code></td><td>${escapeHtml(r.timeout ?? '')}</td></tr>`,
    )
    .join('\n');
  return `<table class="zs-static"><thead><tr><th>API</th><th>Summary</th><th>Request</th><th>Default timeout</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** The error catalogue page, from the server's one table of codes (core/error-codes.ts). */
export function errorCatalogue(title: string): string {
  const rows = Object.entries(ERROR_CODES as Record<string, ErrorCodeInfo>)
    .map(([code, e]) => {
      const also = Object.entries(e.alsoStatus ?? {})
        .map(([s, when]) => `; ${s} (${escapeHtml(when)})`)
        .join('');
      return `<tr id="${escapeHtml(code)}"><td><code>${escapeHtml(code)}</code></td><td>${e.status ?? 503}${also}</td><td>${escapeHtml(e.description)}</td><td>${escapeHtml(e.meaning)}</td></tr>`;
    })
    .join('\n');
  return htmlPage(
    `${title}: error codes`,
    `
  body { margin: 1em; font-family: system-ui, sans-serif; }
  table { border-collapse: collapse; font-size: 14px; }
  td, th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
`,
    `
<h1>Error codes</h1>
<p>Every error is <code>{"error": {"code", "description", "details", "cause"?}}</code>. The status is the one of a
direct answer: a refusal of a call sent with <code>X-ZStack-Errors: direct</code> (the TypeScript SDK and zstack-cli
send it) and REST-layer faults. Under upstream's contract (without that header) an asynchronous API's failures are
its job's, and a failed job answers <b>503</b> on its poll whatever its code, with the cause chain in
<code>cause</code>; failed synchronous APIs answer 503 too. Codes <code>SDK.*</code> come from the TypeScript
SDK itself (see its README).</p>
<table><thead><tr><th>Code</th><th>HTTP status</th><th>Description</th><th>Meaning</th></tr></thead><tbody>
${rows}
</tbody></table>
`,
  );
}

function page(title: string, prefix: string, rows: Row[], hasBundle: boolean): string {
  const index = staticIndex(rows);
  const script = hasBundle ? `<script type="module" src="${prefix}/init.js"></script>` : '';
  return htmlPage(
    title,
    `
  body { margin: 0; font-family: system-ui, sans-serif; }
  .zs-static { border-collapse: collapse; margin: 1em; font-size: 14px; }
  .zs-static td, .zs-static th { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
`,
    `
<p style="margin:0.5em 1em;font-size:14px"><a href="${prefix}/getting-started">Getting started</a> · <a href="${prefix}/errors">Error codes</a></p>
<div id="redoc"></div>
${hasBundle ? `<noscript><h1>${escapeHtml(title)}</h1>${index}</noscript>` : `<h1 style="margin:1em">${escapeHtml(title)}</h1><p style="margin:1em">The interactive reference needs Redoc's bundle (npm package <code>redoc</code> or <code>@redocly/cli</code>); the spec is at <a href="${prefix}/openapi.json">${prefix}/openapi.json</a>.</p>${index}`}
${script}
`,
  );
}

/**
 * Serves the reference at `<prefix>` (HTML), `<prefix>/openapi.json` (the spec), `<prefix>/init.js` and
 * `<prefix>/redoc.standalone.js`; the error catalogue at `<prefix>/errors` (and `.json`); the getting-started page at
 * `<prefix>/getting-started`; `/favicon.ico`.
 */
export function registerDocs(app: FastifyInstance, doc: Record<string, any>, opts: DocsOptions = {}): void {
  const prefix = (opts.prefix ?? '/zstack/docs').replace(/\/$/, '');
  const bundlePath = opts.bundlePath === null ? undefined : (opts.bundlePath ?? findRedocBundle());
  const html = page(opts.title ?? doc.info?.title ?? 'API reference', prefix, rowsOf(doc), Boolean(bundlePath));
  const specText = JSON.stringify(doc);
  let bundle: { text: Buffer; etag: string } | undefined;

  // Nothing leaves the server's origin: Redoc's remote logo (and anything else remote) is blocked by the policy.
  const csp =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:";
  const init = `import { init } from '${prefix}/redoc.standalone.js';
init('${prefix}/openapi.json', { disableTelemetry: true, jsonSamplesExpandLevel: 3, codeSamples: { languages: ${JSON.stringify(SAMPLE_LANGUAGES)} } }, document.getElementById('redoc'));
`;
  const sendHtml = async (_req: unknown, reply: any) =>
    reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-cache').header('content-security-policy', csp).send(html);
  app.get(prefix, sendHtml);
  app.get(`${prefix}/`, sendHtml);
  app.get(`${prefix}/openapi.json`, async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(specText));
  const errorsHtml = errorCatalogue(opts.title ?? doc.info?.title ?? 'API reference');
  app.get(`${prefix}/errors`, async (_req, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(errorsHtml),
  );
  const startHtml = gettingStartedPage(opts.title ?? doc.info?.title ?? 'API reference', prefix);
  app.get(`${prefix}/getting-started`, async (_req, reply) =>
    reply.header('content-type', 'text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").send(startHtml),
  );
  app.get(`${prefix}/errors.json`, async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(ERROR_CODES));
  // Browsers ask for it on every page: an empty answer instead of a 404 (in the log and the console).
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).header('cache-control', 'public, max-age=86400').send());
  if (bundlePath) {
    app.get(`${prefix}/init.js`, async (_req, reply) =>
      reply.header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(init),
    );
    app.get(`${prefix}/redoc.standalone.js`, async (req, reply) => {
      bundle ??= (() => {
        const text = readFileSync(bundlePath);
        return { text, etag: `"${createHash('sha1').update(text).digest('hex')}"` };
      })();
      if (req.headers['if-none-match'] === bundle.etag) return reply.code(304).send();
      return reply
        .header('content-type', 'text/javascript; charset=utf-8')
        .header('cache-control', 'public, max-age=86400')
        .header('etag', bundle.etag)
        .send(bundle.text);
    });
  }
}
