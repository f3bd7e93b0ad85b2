// The publishable packages (sdk/, pulumi-provider/) as built by `npm run build` (scripts/build-package.mjs): tests
// that run them as a user would (plain Node, the Pulumi plugin) build them first when dist/ is missing or older than
// its sources. Test processes run in parallel: one build at a time per package (a lock folder), re-checked inside.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const run = promisify(execFile);

export const PACKAGES = {
  sdk: { dir: join(REPO, 'sdk'), inputs: ['src', 'bin', 'package.json', '../openapi/helpers.ts', '../openapi/generated/api.ts'] },
  pulumi: { dir: join(REPO, 'pulumi-provider'), inputs: ['src', 'package.json', '../sdk/src'] },
} as const;
export type PackageName = keyof typeof PACKAGES;

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

const BUILD_SCRIPT = join(REPO, 'scripts', 'build-package.mjs');

/** True when dist/ exists and is newer than every input of the package (and the build script). */
export function isFresh(name: PackageName): boolean {
  const p = PACKAGES[name];
  const stamp = join(p.dir, 'dist', 'cjs', 'package.json'); // the build's last write
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  return Math.max(newest(BUILD_SCRIPT), ...p.inputs.map((i) => newest(join(p.dir, i)))) <= built;
}

async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.build-lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test process is building; a lock older than 5 minutes is a leftover of a killed run.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 300_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone meanwhile */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Builds the package (and what it depends on) unless its dist/ is fresh. Returns whether it built. */
export async function ensureBuilt(name: PackageName): Promise<boolean> {
  if (name === 'pulumi') await ensureBuilt('sdk');
  if (isFresh(name)) return false;
  const p = PACKAGES[name];
  return withLock(p.dir, async () => {
    if (isFresh(name)) return false;
    await run(process.execPath, [BUILD_SCRIPT, p.dir], { cwd: p.dir, maxBuffer: 16 << 20 });
    return true;
  });
}
