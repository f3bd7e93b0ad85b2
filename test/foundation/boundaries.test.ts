// What a file may import (docs/architecture.md, "Boundaries"), checked on server/src's import graph:
// (a) only the composition root (app.ts, main.ts, domains.ts) imports app.ts — domains get a DomainContext;
// (b) a domain imports another domain only through its index.ts (its public face); core/, db/, agent-client/ and
//     docs/ are shared by all and import no domain;
// (c) the domains import each other without circles, and no files import each other in a circle (type-only imports
//     count: a circle of types is still two files that cannot be read one without the other).
// Known violations would be listed below with the reason; the list is checked both ways (a listed violation
// that is gone fails too), so it can only shrink. It is empty: on 2026-12-06 it went 41 → 0 files importing
// app.ts, 19 → 0 deep imports, and the 43-file import circle through app.ts is gone; file-level circles went 4 → 0
// later that day (vm/'s 7 files around service.ts, core/query ↔ db/perf, image/, snapshot/).
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { checkBoundaries, importEdges } from '../lib/import-graph.js';

const SRC = fileURLToPath(new URL('../../server/src', import.meta.url));
const ALLOWED: { rootImporters: string[]; deepImports: string[]; sharedOnDomain: string[]; domainCycles: string[]; fileCycles: string[][] } = {
  rootImporters: [],
  deepImports: [],
  sharedOnDomain: [],
  domainCycles: [],
  fileCycles: [],
};

const b = checkBoundaries(SRC);

t.test('the scanner sees the imports (guards the check itself)', async (t) => {
  const edges = importEdges(SRC);
  t.ok(
    edges.some((e) => e.from === 'main.ts' && e.to === 'app.ts'),
    'main.ts → app.ts',
  );
  t.ok(
    edges.some((e) => e.from === 'virtual-router/service.ts' && e.to === 'vm/index.ts'),
    'virtual-router → vm/index.ts',
  );
  t.ok(
    edges.some((e) => e.from === 'vm/index.ts' && e.to === 'vm/service.ts'),
    'a domain imports its own files',
  );
});

for (const key of Object.keys(ALLOWED) as Array<keyof typeof ALLOWED>) {
  t.test(key, async (t) => {
    t.same(b[key], ALLOWED[key], `${key}: new ones are not allowed; fixed ones leave the list`);
  });
}
