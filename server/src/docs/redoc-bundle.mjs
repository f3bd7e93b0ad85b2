// Where Redoc's standalone bundle is (plain JavaScript: the server build script, run by node, uses it too).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The copy the server build puts in dist/ (served where only production dependencies are installed). */
export const BUILT_REDOC_BUNDLE = 'redoc.standalone.js';

const CANDIDATES = [
  // the `redoc` package, if installed
  'redoc/bundles/redoc.standalone.js',
  // the same bundle as shipped inside @redocly/cli (the tool `npm run docs` uses): there wherever devDependencies are
  '@redocly/cli/lib/chunks/redoc.standalone.js',
];

const HERE = dirname(fileURLToPath(import.meta.url));

/** Looks for the bundle in the node_modules directories above `from`, then for the build's copy in dist/. */
export function findRedocBundle(from = HERE) {
  for (let dir = from; ; dir = dirname(dir)) {
    for (const c of CANDIDATES) {
      const p = join(dir, 'node_modules', c);
      if (existsSync(p)) return p;
    }
    if (dirname(dir) === dir) break;
  }
  const built = join(HERE, '../../../dist', BUILT_REDOC_BUNDLE);
  return existsSync(built) ? built : undefined;
}
