// The browser console: an HTML page that runs noVNC (`@novnc/novnc`, served from node_modules as native ES modules)
// against the console proxy's WebSocket `ws(s)://<host>:<port>/?token=<token>`. Served by the server at
// `/zstack/console?token=…&host=…&port=…[&scheme=ws|wss][&title=…]`.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';

/** Where registerConsoleAssets serves noVNC's files by default. */
export const NOVNC_PREFIX = '/zstack/console/novnc';

export interface ConsolePageOptions {
  /** The console token (from RequestConsoleAccess). */
  token: string;
  /** Proxy hostname; default the page's own hostname. */
  host?: string;
  /** Proxy port (the console proxy's WebSocket listener). */
  port: number;
  /** Default: wss when the page itself is https, else ws. */
  scheme?: 'ws' | 'wss';
  /** Path on the proxy (default '/'). */
  path?: string;
  /** Shown in the title bar and the page's title (e.g. the VM's name); default the VNC desktop name. */
  title?: string;
  /** Where noVNC's files are served (registerConsoleAssets' prefix). */
  assetsPrefix?: string;
  viewOnly?: boolean;
}

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?)$/;

/**
 * Checks the page's query (`token`, `port`, optional `host`, `scheme`, `path`, `title`); returns the options or
 * the reason they are unusable (for a 400).
 */
export function consolePageOptions(query: Record<string, unknown>): ConsolePageOptions | { error: string } {
  const str = (k: string) => (typeof query[k] === 'string' ? (query[k] as string) : undefined);
  const token = str('token');
  if (!token || !TOKEN.test(token)) return { error: 'token is missing or malformed' };
  const port = Number(str('port'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: 'port must be an integer 1-65535' };
  const host = str('host');
  if (host !== undefined && host !== '' && !HOST.test(host)) return { error: 'host is not a hostname or IP address' };
  const scheme = str('scheme');
  if (scheme !== undefined && scheme !== 'ws' && scheme !== 'wss') return { error: 'scheme must be ws or wss' };
  const path = str('path');
  if (path !== undefined && !/^\/[A-Za-z0-9/_.-]*$/.test(path)) return { error: 'path must be an absolute URL path' };
  const title = str('title');
  return {
    token,
    port,
    ...(host ? { host: host.replace(/^\[|\]$/g, '') } : {}),
    ...(scheme ? { scheme } : {}),
    ...(path ? { path } : {}),
    ...(title ? { title: title.slice(0, 200) } : {}),
  };
}

/** The console page's HTML. Every value is embedded escaped; the page's script is allowed by its CSP hash. */
export function consolePage(opts: ConsolePageOptions): string {
  const prefix = (opts.assetsPrefix ?? NOVNC_PREFIX).replace(/\/+$/, '');
  const config = {
    token: opts.token,
    host: opts.host ?? '',
    port: opts.port,
    scheme: opts.scheme ?? '',
    path: opts.path ?? '/',
    title: opts.title ?? '',
    viewOnly: opts.viewOnly ?? false,
  };
  const script = pageScript(`${prefix}/core/rfb.js`);
  const scriptHash = createHash('sha256').update(script).digest('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${scriptHash}'`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    'connect-src ws: wss:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  const title = escapeHtml(opts.title ? `${opts.title} - console` : 'ZStack console');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<title>${title}</title>
<style>
  html, body { margin: 0; height: 100%; background: #1d1f21; color: #e6e6e6; font: 14px/1.4 system-ui, sans-serif; }
  body { display: flex; flex-direction: column; }
  #bar { display: flex; align-items: center; gap: 12px; padding: 6px 12px; background: #2b2e33; border-bottom: 1px solid #111; }
  #name { font-weight: 600; }
  #status { flex: 1; color: #b5b5b5; }
  body[data-state="connected"] #status { color: #7fd17f; }
  body[data-state="failed"] #status, body[data-state="disconnected"] #status { color: #ff8a80; }
  button { background: #3c4047; color: inherit; border: 1px solid #555; border-radius: 3px; padding: 3px 10px; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  #screen { flex: 1; overflow: hidden; }
</style>
</head>
<body data-state="connecting">
<div id="bar">
  <span id="name">${escapeHtml(opts.title ?? 'Console')}</span>
  <span id="status" role="status">Connecting…</span>
  <button id="cad" type="button" disabled>Ctrl+Alt+Del</button>
</div>
<div id="screen"></div>
<script type="application/json" id="zstack-console-config">${jsonForHtml(config)}</script>
<script type="module">${script}</script>
</body>
</html>
`;
}

/** The page's module script; identical for every page, so its CSP hash is stable. */
function pageScript(rfbUrl: string): string {
  return `
import RFB from ${JSON.stringify(rfbUrl)};
const cfg = JSON.parse(document.getElementById('zstack-console-config').textContent);
const statusEl = document.getElementById('status');
const nameEl = document.getElementById('name');
const cad = document.getElementById('cad');
const scheme = cfg.scheme || (location.protocol === 'https:' ? 'wss' : 'ws');
const host = cfg.host || location.hostname;
const hostPart = host.includes(':') ? '[' + host + ']' : host;
const url = scheme + '://' + hostPart + ':' + cfg.port + cfg.path + '?token=' + encodeURIComponent(cfg.token);
const api = window.zstackConsole = { state: 'connecting', error: null, desktopName: null, rfb: null };
function setState(state, text) {
  api.state = state;
  document.body.dataset.state = state;
  statusEl.textContent = text;
  cad.disabled = state !== 'connected' || cfg.viewOnly;
}
try {
  const rfb = api.rfb = new RFB(document.getElementById('screen'), url, { shared: true, wsProtocols: ['binary'] });
  rfb.viewOnly = cfg.viewOnly;
  rfb.scaleViewport = true;
  rfb.background = '#1d1f21';
  rfb.addEventListener('connect', () => { setState('connected', 'Connected'); rfb.focus(); });
  rfb.addEventListener('disconnect', (e) => {
    if (e.detail.clean) setState('disconnected', 'Disconnected');
    else { api.error = 'connection failed or dropped'; setState('failed', 'Connection failed or dropped (the link may have expired or been used already)'); }
  });
  rfb.addEventListener('securityfailure', (e) => { api.error = e.detail.reason || 'security failure'; setState('failed', 'Security failure: ' + api.error); });
  rfb.addEventListener('credentialsrequired', () => { setState('failed', 'The console asks for a password, which this page does not support'); rfb.disconnect(); });
  rfb.addEventListener('desktopname', (e) => {
    api.desktopName = e.detail.name;
    if (!cfg.title) { nameEl.textContent = e.detail.name; document.title = e.detail.name + ' - console'; }
  });
  cad.addEventListener('click', () => rfb.sendCtrlAltDel());
} catch (err) {
  api.error = String(err && err.message || err);
  setState('failed', 'Cannot open the console: ' + api.error);
}
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that cannot close its <script> element or start a comment. */
function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The @novnc/novnc package directory (its entry is core/rfb.js). */
export function novncRoot(): string {
  const entry = createRequire(import.meta.url).resolve('@novnc/novnc');
  return dirname(dirname(entry));
}

/**
 * Serves noVNC's ES modules (`core/**`, `vendor/**` of @novnc/novnc, `.js` only) under `prefix`
 * (default /zstack/console/novnc). Files are read once and kept in memory (about 1 MB).
 */
export function registerConsoleAssets(fastify: FastifyInstance, opts: { prefix?: string } = {}): void {
  const prefix = (opts.prefix ?? NOVNC_PREFIX).replace(/\/+$/, '');
  const root = novncRoot();
  const cache = new Map<string, Promise<Buffer | undefined>>();
  const load = (rel: string) => {
    let file = cache.get(rel);
    if (!file) {
      const abs = resolve(root, rel);
      file = abs.startsWith(root + sep) ? readFile(abs).catch(() => undefined) : Promise.resolve(undefined);
      cache.set(rel, file);
      file.then((b) => {
        if (!b) cache.delete(rel);
      }); // only files that exist are kept
    }
    return file;
  };
  fastify.get(`${prefix}/*`, async (request, reply) => {
    const rel = (request.params as { '*': string })['*'];
    const safe = /^(?:core|vendor)\/[A-Za-z0-9_./-]+\.js$/.test(rel) && !rel.split('/').some((s) => s === '..' || s === '.' || s === '');
    const body = safe ? await load(rel) : undefined;
    if (!body) return reply.code(404).type('text/plain; charset=utf-8').send(`not found: ${rel}\n`);
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').header('x-content-type-options', 'nosniff').send(body);
  });
}
