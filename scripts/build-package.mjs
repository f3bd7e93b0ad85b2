#!/usr/bin/env node
// Builds a publishable package (sdk/ or pulumi-provider/) into <pkg>/dist: ES modules in dist/esm, CommonJS in
// dist/cjs, each with .d.ts files and source maps (sources inlined, the staging folder is deleted). Plain tsc, twice:
// the sources are staged in <pkg>/.build/src under a package.json saying "module", then "commonjs", and compiled with
// module NodeNext, so one set of `.js`-suffixed imports serves both formats and `import()` stays a real dynamic import
// in the CommonJS build (the Pulumi provider needs that).
//
// The SDK's types come from the workspace's private `@zstack-ts/openapi` (generated from the spec): the build copies
// them into the package (src/generated/api.ts, src/generated/openapi-helpers.ts) and points the imports there, so
// the tarball depends on no private workspace.
//
// usage: node scripts/build-package.mjs <package folder>
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkgDir = resolve(process.argv[2] ?? process.cwd());
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const stage = join(pkgDir, '.build');
const dist = join(pkgDir, 'dist');
const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');

rmSync(stage, { recursive: true, force: true });
rmSync(dist, { recursive: true, force: true });
cpSync(join(pkgDir, 'src'), join(stage, 'src'), { recursive: true });

/** Private workspace imports → files copied into the package. */
const VENDORED = {
  '@zstack-ts/openapi/helpers': {
    file: 'generated/openapi-helpers.ts',
    from: join(ROOT, 'openapi/helpers.ts'),
    edit: (text) => text.replaceAll("'./generated/api.js'", "'./api.js'"),
  },
  '@zstack-ts/openapi/api': { file: 'generated/api.ts', from: join(ROOT, 'openapi/generated/api.ts'), edit: (t) => t },
  '@zstack-ts/openapi/duration': { file: 'generated/duration.ts', from: join(ROOT, 'openapi/shared/duration.ts'), edit: (t) => t },
};

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const needed = new Set();
for (const file of walk(join(stage, 'src'))) {
  let text = readFileSync(file, 'utf8');
  let changed = false;
  for (const [spec, v] of Object.entries(VENDORED)) {
    if (!text.includes(`'${spec}'`)) continue;
    let rel = relative(dirname(file), join(stage, 'src', v.file.replace(/\.ts$/, '.js')))
      .split(sep)
      .join('/');
    if (!rel.startsWith('.')) rel = `./${rel}`;
    text = text.replaceAll(`'${spec}'`, `'${rel}'`);
    changed = true;
    needed.add(spec);
  }
  if (changed) writeFileSync(file, text);
}
// The helpers import the generated API types: vendor both together.
if (needed.has('@zstack-ts/openapi/helpers')) needed.add('@zstack-ts/openapi/api');
for (const spec of needed) {
  const v = VENDORED[spec];
  writeFileSync(
    join(stage, 'src', v.file),
    `// Copied from the private openapi workspace at build time (generated from the spec, or shared with it).\n${v.edit(readFileSync(v.from, 'utf8'))}`,
  );
}

const compilerOptions = {
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  esModuleInterop: true,
  skipLibCheck: true,
  resolveJsonModule: true,
  isolatedModules: true,
  types: ['node'],
  declaration: true,
  declarationMap: false,
  sourceMap: true,
  inlineSources: true,
  rootDir: './src',
  noEmitOnError: true,
  removeComments: false,
};

for (const format of ['esm', 'cjs']) {
  const type = format === 'esm' ? 'module' : 'commonjs';
  writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: pkg.name, private: true, type }));
  const outDir = join(dist, format);
  // The second pass only re-emits: the first one type-checked the same sources.
  writeFileSync(
    join(stage, `tsconfig.${format}.json`),
    JSON.stringify({ compilerOptions: { ...compilerOptions, outDir, noCheck: format === 'cjs' }, include: ['src'] }, null, 2),
  );
  execFileSync(process.execPath, [tsc, '-p', join(stage, `tsconfig.${format}.json`)], { stdio: 'inherit', cwd: stage });
  // Each half says what it is, whatever the package's own "type".
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ type }, null, 2)}\n`);
}

// Source maps: name the file by its path in the package (the staging folder is gone after the build).
for (const format of ['esm', 'cjs']) {
  for (const file of walkMaps(join(dist, format))) {
    const map = JSON.parse(readFileSync(file, 'utf8'));
    map.sources = map.sources.map((s) => s.replaceAll('.build/src/', 'src/'));
    writeFileSync(file, JSON.stringify(map));
  }
}
function walkMaps(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walkMaps(p, out);
    else if (p.endsWith('.js.map')) out.push(p);
  }
  return out;
}

// The vendored API types are types only: their .js is empty, a source map would only carry the 450 kB text twice.
for (const spec of needed) {
  for (const format of ['esm', 'cjs']) {
    const js = join(dist, format, VENDORED[spec].file.replace(/\.ts$/, '.js'));
    rmSync(`${js}.map`, { force: true });
    writeFileSync(js, readFileSync(js, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n'));
  }
}

rmSync(stage, { recursive: true, force: true });
if (!existsSync(join(dist, 'esm', 'index.js'))) throw new Error(`build of ${pkg.name}: no dist/esm/index.js`);
console.log(`built ${pkg.name} → ${relative(process.cwd(), dist) || 'dist'} (esm + cjs)`);
