// Summarises a V8 .cpuprofile (from BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"): busy vs idle time,
// self time by function and by file/package, and inclusive time of the functions whose names match a filter.
//
//   npx tsx bench/provision/cpuprofile.ts <file.cpuprofile> [--top 25] [--match regex]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
const top = Number(process.argv[process.argv.indexOf('--top') + 1] || 25) || 25;
const matchIdx = process.argv.indexOf('--match');
const match = matchIdx > 0 ? new RegExp(process.argv[matchIdx + 1]) : undefined;
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sample: the delta that follows it.
const selfUs = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i + 1] ?? 0;
  selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
}
const total = p.endTime - p.startTime;
const short = (url: string) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'node_modules/')
    .replace(/.*\/work\/main\//, '');
const pkgOf = (url: string) => {
  const s = short(url);
  if (!s) return '(native/internal)';
  if (s.startsWith('node:')) return 'node:' + s.slice(5).split('/')[0];
  const m = /^node_modules\/((@[^/]+\/)?[^/]+)/.exec(s);
  return m ? m[1] : s.split('/').slice(0, 3).join('/');
};

let idle = 0;
let gc = 0;
const fnSelf = new Map<string, number>();
const pkgSelf = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const name = n.callFrame.functionName || '(anonymous)';
  if (name === '(idle)') {
    idle += us;
    continue;
  }
  if (name === '(garbage collector)') gc += us;
  const key = `${name} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  fnSelf.set(key, (fnSelf.get(key) ?? 0) + us);
  const pkg = name.startsWith('(') ? name : pkgOf(n.callFrame.url);
  pkgSelf.set(pkg, (pkgSelf.get(pkg) ?? 0) + us);
}
const ms = (us: number) => Math.round(us / 1000);
const pct = (us: number) => `${((us / total) * 100).toFixed(1)}%`;
console.log(`${file}\nwall ${ms(total)} ms, busy ${ms(total - idle)} ms (${pct(total - idle)}), GC ${ms(gc)} ms (${pct(gc)})`);
console.log('\nself time by package/file:');
for (const [k, v] of [...pkgSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${String(ms(v)).padStart(7)} ms ${pct(v).padStart(6)}  ${k}`);
console.log('\nself time by function:');
for (const [k, v] of [...fnSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${String(ms(v)).padStart(7)} ms ${pct(v).padStart(6)}  ${k}`);

// Inclusive time: each sample counts once for every distinct function key on its stack.
const incl = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(root)' || name === '(program)') continue;
    const key = `${name} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    incl.set(key, (incl.get(key) ?? 0) + us);
  }
}
console.log(`\ninclusive time${match ? ` (functions matching ${match})` : ''}:`);
const rows = [...incl].filter(([k]) => (match ? match.test(k) : !k.includes('node_modules') && !k.startsWith('(anonymous)'))).sort((a, b) => b[1] - a[1]);
for (const [k, v] of rows.slice(0, top)) console.log(`  ${String(ms(v)).padStart(7)} ms ${pct(v).padStart(6)}  ${k}`);

// --callers regex: for the samples inside a matching function, the nearest caller outside Node's internals.
const callersIdx = process.argv.indexOf('--callers');
if (callersIdx > 0) {
  const re = new RegExp(process.argv[callersIdx + 1]);
  const callers = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const stack: Node[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) stack.push(byId.get(cur)!);
    const i = stack.findIndex((n) => re.test(n.callFrame.functionName));
    if (i < 0) continue;
    const caller = stack.slice(i + 1).find((n) => n.callFrame.url && !n.callFrame.url.startsWith('node:'));
    const key = caller ? `${caller.callFrame.functionName || '(anonymous)'} ${short(caller.callFrame.url)}:${caller.callFrame.lineNumber + 1}` : '(none)';
    callers.set(key, (callers.get(key) ?? 0) + us);
  }
  console.log(`\nnearest non-internal callers of ${re}:`);
  for (const [k, v] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${String(ms(v)).padStart(7)} ms ${pct(v).padStart(6)}  ${k}`);
}
