// The agent bundle shipped to hosts: agents/src/cli.ts and everything it imports (fastify, ajv, yaml, ws…) bundled
// by esbuild into one ESM file, plus the protocol spec it reads at start. No node_modules and no npm on the host, so a
// deploy needs no package registry at all; the files are compared by sha256 and uploaded only when they differ.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_SPEC_URL } from '../lib/spec.js';

export const BUNDLE_ENTRY = 'zstack-agent.mjs';
const SPEC_PATH = 'openapi/agents/protocol.yaml';
/** The bundle's files, relative to the bundle directory: known before the bundle is built. */
export const BUNDLE_PATHS = [BUNDLE_ENTRY, SPEC_PATH];

export interface BundleFile {
  /** Relative to the bundle directory on the host. */
  path: string;
  content: Buffer;
  sha256: string;
}

export interface AgentBundle {
  files: BundleFile[];
  /** `sha256sum` output for the files, in order: compared verbatim with the host's. */
  manifest: string;
  bytes: number;
  buildMs: number;
}

let cached: Promise<AgentBundle> | undefined;

/** Built once per process (about 0.3 s); later deploys reuse it. */
export function agentBundle(): Promise<AgentBundle> {
  cached ??= buildAgentBundle().catch((err) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

export async function buildAgentBundle(): Promise<AgentBundle> {
  const started = performance.now();
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [fileURLToPath(new URL('../cli.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    outfile: BUNDLE_ENTRY,
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'silent',
    banner: {
      js: [
        // CommonJS dependencies call require() for node builtins; give the ESM bundle one.
        "import { createRequire as __zstackCreateRequire } from 'node:module';",
        'const require = __zstackCreateRequire(import.meta.url);',
        // spec.ts finds the protocol at ../../../openapi/… from agents/src/lib/: make that resolve inside the bundle.
        "const __zstackSourceUrl = new URL('./agents/src/lib/spec.js', import.meta.url).href;",
      ].join('\n'),
    },
    define: { 'import.meta.url': '__zstackSourceUrl' },
  });
  const code = result.outputFiles.find((f) => f.path.endsWith(BUNDLE_ENTRY));
  if (!code) throw new Error('esbuild produced no agent bundle');
  const files = [file(BUNDLE_ENTRY, Buffer.from(code.contents)), file(SPEC_PATH, await readFile(PROTOCOL_SPEC_URL))];
  return {
    files,
    manifest: files.map((f) => `${f.sha256}  ${f.path}\n`).join(''),
    bytes: files.reduce((sum, f) => sum + f.content.length, 0),
    buildMs: Math.round(performance.now() - started),
  };
}

function file(path: string, content: Buffer): BundleFile {
  return { path, content, sha256: createHash('sha256').update(content).digest('hex') };
}
