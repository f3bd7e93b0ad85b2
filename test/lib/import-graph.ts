// The import graph of server/src, read with the TypeScript compiler's own import scanner (ts.preProcessFile: every
// `import`, `export … from` and `import()`, type-only ones included). Used by test/foundation/boundaries.test.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Folders every module may import: the shared mechanisms. Everything else under server/src/<folder>/ is a domain. */
export const SHARED = new Set(['core', 'db', 'agent-client', 'docs']);
/** The composition root: the only files that may import app.ts. */
export const ROOT_FILES = new Set(['app.ts', 'main.ts', 'domains.ts']);

export interface ImportEdge {
  from: string; // path relative to server/src, e.g. 'vm/create.ts'
  to: string;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every import between files of `srcDir` (imports of packages and of files outside it are left out). */
export function importEdges(srcDir: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of walk(srcDir)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const ref of info.importedFiles) {
      if (!ref.fileName.startsWith('.')) continue;
      const target = resolve(dirname(file), ref.fileName.replace(/\.js$/, '.ts'));
      const to = relative(srcDir, target);
      if (to.startsWith('..')) continue;
      edges.push({ from: relative(srcDir, file), to });
    }
  }
  return edges;
}

/** The domain a file belongs to (its top folder), or undefined for shared folders and root files. */
export function domainOf(path: string): string | undefined {
  const parts = path.split('/');
  if (parts.length < 2 || SHARED.has(parts[0])) return undefined;
  return parts[0];
}

export interface Boundaries {
  /** Files outside the composition root importing app.ts. */
  rootImporters: string[];
  /** `from → to` where a domain file imports another domain's file other than its index.ts. */
  deepImports: string[];
  /** `from → to` where a shared folder (core, db, agent-client) imports a domain. */
  sharedOnDomain: string[];
  /** Circles in the graph of domains (each as `a → b → a`). */
  domainCycles: string[];
  /** Strongly connected groups of files of size > 1 (file-level import circles), largest first. */
  fileCycles: string[][];
}

export function checkBoundaries(srcDir: string): Boundaries {
  const edges = importEdges(srcDir);
  const rootImporters = [...new Set(edges.filter((e) => e.to === 'app.ts' && !ROOT_FILES.has(e.from)).map((e) => e.from))].sort();
  const deepImports: string[] = [];
  const sharedOnDomain: string[] = [];
  const domainGraph = new Map<string, Set<string>>();
  for (const e of edges) {
    const a = domainOf(e.from);
    const b = domainOf(e.to);
    if (!a && b && SHARED.has(e.from.split('/')[0])) sharedOnDomain.push(`${e.from} → ${e.to}`);
    if (!a || !b || a === b) continue;
    if (e.to !== `${b}/index.ts`) deepImports.push(`${e.from} → ${e.to}`);
    if (!domainGraph.has(a)) domainGraph.set(a, new Set());
    domainGraph.get(a)!.add(b);
  }
  const fileGraph = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!fileGraph.has(e.from)) fileGraph.set(e.from, new Set());
    fileGraph.get(e.from)!.add(e.to);
  }
  const domainCycles = stronglyConnected(domainGraph)
    .filter((c) => c.length > 1)
    .map((c) => c.sort().join(' ⇄ '));
  const fileCycles = stronglyConnected(fileGraph)
    .filter((c) => c.length > 1)
    .map((c) => c.sort())
    .sort((x, y) => y.length - x.length);
  return {
    rootImporters,
    deepImports: [...new Set(deepImports)].sort(),
    sharedOnDomain: [...new Set(sharedOnDomain)].sort(),
    domainCycles: domainCycles.sort(),
    fileCycles,
  };
}

/** Tarjan's strongly connected components. */
function stronglyConnected(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const nodes = new Set([...graph.keys(), ...[...graph.values()].flatMap((s) => [...s])]);
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      out.push(c);
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return out;
}
