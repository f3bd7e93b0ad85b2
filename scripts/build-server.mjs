#!/usr/bin/env node
// Builds what `npm start` runs into dist/ (run by `npm install`'s prepare, and by `npm start` when a source changed):
// server/src/main.ts → dist/main.js and the agent CLI agents/src/cli.ts → dist/zstack-agent.js, ES modules bundled by
// esbuild, code split so what the sources import lazily stays lazy (the ssh deployer, PGlite). Packages from
// node_modules stay imports (resolved from dist/, as from the sources); the workspace's own TypeScript is bundled.
// `import.meta.url` in a source file becomes that file's own URL (computed from the bundle's, so the checkout can
// move), so paths written relative to a source file (migrations, the spec, the agent's protocol) resolve as they do
// from the sources. Tests keep running the sources through tsx.
//
// usage: node scripts/build-server.mjs [--if-stale]   (--if-stale: build only when an input is newer than the build)
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(ROOT, 'dist');
export const SERVER_ENTRY = join(DIST, 'main.js');
const STAMP = join(DIST, '.inputs.json');
/** What the build reads: a change to any file here (or one added or removed) makes it stale. */
const INPUT_DIRS = ['server/src', 'agents/src', 'openapi/generated', 'openapi/shared'];
const INPUT_FILES = ['openapi/helpers.ts', 'scripts/build-server.mjs', 'package-lock.json'];

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
}

/** The inputs' count and newest modification time (a few ms: ~200 stats). */
function inputsState() {
  const files = INPUT_FILES.map((f) => join(ROOT, f));
  for (const d of INPUT_DIRS) walk(join(ROOT, d), files);
  let newest = 0;
  for (const f of files) {
    try {
      newest = Math.max(newest, statSync(f).mtimeMs);
    } catch {
      // an optional input
    }
  }
  return { files: files.length, newest };
}

/** Why the build is stale, or undefined when dist/ is up to date. */
export function staleReason() {
  let built;
  try {
    built = JSON.parse(readFileSync(STAMP, 'utf8'));
    statSync(SERVER_ENTRY);
  } catch {
    return 'not built yet';
  }
  const now = inputsState();
  if (now.files !== built.files) return 'source files were added or removed';
  if (now.newest > built.newest) return 'sources changed';
  return undefined;
}

// Skips strings and comments, so only code's `import.meta.url` is rewritten (agents/src/deploy/bundle.ts has it in
// strings of the bundle it writes).
const TOKENS = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`|\bimport\.meta\.url\b/g;

const sourceUrl = {
  name: 'source-url',
  setup(b) {
    b.onLoad({ filter: /\.(ts|mts|js|mjs)$/ }, async (args) => {
      if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
      const text = await readFile(args.path, 'utf8');
      const loader = /\.m?ts$/.test(args.path) ? 'ts' : 'js';
      if (!text.includes('import.meta.url')) return { contents: text, loader };
      const rel = relative(DIST, args.path).split(sep).join('/');
      const own = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
      return { contents: text.replace(TOKENS, (m) => (m === 'import.meta.url' ? own : m)), loader };
    });
  },
};

/** Bare imports from node_modules stay imports; the workspace's packages (TypeScript) are bundled. */
const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@zstack-ts/') ? undefined : { path: args.path, external: true }));
  },
};

export async function build() {
  const started = performance.now();
  const before = inputsState();
  const esbuild = await import('esbuild');
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  try {
    await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: { main: 'server/src/main.ts', 'zstack-agent': 'agents/src/cli.ts' },
      outdir: DIST,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'warning',
      plugins: [externalPackages, sourceUrl],
      // server/src/agent-client/local-agent.ts: a built server spawns the built agent (relative to local-agent.ts).
      define: { ZSTACK_BUILT_AGENT: JSON.stringify(relative(join(ROOT, 'server/src/agent-client'), join(DIST, 'zstack-agent.js')).split(sep).join('/')) },
    });
  } finally {
    await esbuild.stop?.();
  }
  // The API reference's Redoc bundle comes from a build tool (a devDependency): a copy in dist/ serves it where only
  // the production dependencies are installed.
  const { findRedocBundle, BUILT_REDOC_BUNDLE } = await import('../server/src/docs/redoc-bundle.mjs');
  const redoc = findRedocBundle();
  if (redoc) copyFileSync(redoc, join(DIST, BUILT_REDOC_BUNDLE));
  writeFileSync(STAMP, JSON.stringify(before));
  return Math.round(performance.now() - started);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const ifStale = process.argv.includes('--if-stale');
  const why = staleReason();
  if (ifStale && !why) process.exit(0);
  const ms = await build();
  console.error(`built dist/ (${why ?? 'asked'}) in ${ms} ms`);
}
