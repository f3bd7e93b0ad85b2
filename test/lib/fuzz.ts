// A spec-driven fuzzer: every operation of openapi/dist/openapi.json, its valid example mutated (wrong types, huge
// numbers, NUL bytes, lone surrogates, prototype keys, missing fields, long strings, bad uuids, hostile query
// parameters and headers), sent raw over HTTP with a fixed seed. Each answer must be below 500 and, when an error,
// in ZStack's shape without stack traces or SQL; jobs it starts must not fail with an internal error (SYS.1000).
// Used by test/security/fuzz.test.ts (a few thousand requests, in CI) and bench/fuzz (≥ 10,000).
import { loadSpec, listOperations, type SpecOperation } from '../../server/src/core/spec.js';

export interface FuzzOptions {
  url: string;
  session: string;
  requests: number;
  seed: number;
  concurrency?: number;
  /** Uuids of real resources, used as path parameters now and then (reaching deeper than "not found"). */
  knownUuids?: string[];
  /** Operations left out (with the reason in the caller). */
  exclude?: string[];
}

export interface FuzzFinding {
  operationId: string;
  mutation: string;
  status: number;
  problem: string;
  request: string;
  answer: string;
}

export interface FuzzReport {
  requests: number;
  operations: number;
  byStatus: Record<string, number>;
  byMutation: Record<string, number>;
  jobs: number;
  jobFailures: Record<string, number>;
  findings: FuzzFinding[];
  durationMs: number;
}

/** mulberry32: small, fast, seedable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HUGE = [1e308, 2 ** 63, -(2 ** 63), 1e20, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, -1, 0.5, Number.MAX_SAFE_INTEGER + 2];
const HUGE_TEXT = ['1e308', '9223372036854775808', '-9223372036854775809', '1e20', '2147483648', '-1', 'NaN', 'Infinity', '0x10', '1.5'];
const NASTY_STRINGS = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '\ud83d',
  '😀',
  '%00',
  '../../../etc/passwd',
  "'; DROP TABLE accounts; --",
  '${7*7}',
  '<script>',
  ' ',
  '',
  '\t\n',
  'ÿ',
];
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];
const BAD_UUIDS = [
  'not-a-uuid',
  '0',
  'g'.repeat(32),
  'a'.repeat(33),
  '%00',
  '..',
  '%2e%2e',
  'a'.repeat(300),
  '__proto__',
  'constructor',
  '%ED%A0%80',
  '%E0%A4%A',
];
const QUERY_MUTATIONS = [
  'q=__proto__=1',
  'sort=-__proto__',
  'q=constructor.prototype=1',
  'q=uuid=%00',
  'q=name~=%ED%A0%80',
  'start=1e20',
  'limit=1e20',
  'limit=-1',
  'q=cpuNum>1e23',
  'q=memorySize<-1e30',
  'q=createDate>notadate',
  'q=uuid?=',
  'q==',
  'q=>',
  'q=name',
  'sort=',
  'sortBy=constructor',
  'fields=__proto__,uuid',
  'count=maybe',
  'replyWithCount=1e9',
  'q=state!?=a,b,,c',
  'q=a.b.c.d.e.f.g.h=1',
  `q=name=${'x'.repeat(5000)}`,
  'q[]=x',
  'q.0=name=a',
  'groupBy=x',
];
const HEADER_MUTATIONS: Array<[string, string]> = [
  ['X-API-Timeout', '1e100'],
  ['X-API-Timeout', '99999999999'],
  ['X-API-Timeout', '-5'],
  ['X-API-Timeout', 'soon'],
  ['X-API-Timeout', '2147484'],
  ['X-Job-UUID', 'zz'],
  ['X-Job-UUID', 'A'.repeat(32)],
  ['Prefer', 'wait=1e9'],
  ['Prefer', 'wait=0'],
  ['X-Web-Hook', 'not a url'],
  ['X-Job-Wait-Ms', '1e9'],
  ['Authorization', 'OAuth '],
  ['Authorization', 'OAuth __proto__'],
  ['Authorization', `OAuth ${'a'.repeat(4000)}`],
  ['Content-Type', 'application/xml'],
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Prepared {
  op: SpecOperation;
  example: Json | undefined;
  pathNames: string[];
}

function clone<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

/**
 * An example with its addresses pointed at this machine (IPv4 → 127.0.0.1, URLs → a closed local port): the fuzz
 * reaches no other machine, and SSH logins and downloads the examples describe fail at once instead of waiting for
 * a TCP timeout that the server's shutdown would wait for.
 */
function local(v: Json | undefined): Json | undefined {
  if (typeof v === 'string') {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(v)) return '127.0.0.1';
    if (/^(https?|ftp|sftp|nfs):\/\//i.test(v)) return 'http://127.0.0.1:9/fuzz.qcow2';
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => local(x) as Json);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, local(x) as Json]));
  return v;
}

/** Every (container, key) pair of a JSON value, for picking a leaf or a field to mutate. */
function slots(v: Json, out: Array<[Record<string, Json> | Json[], string | number]> = []): Array<[Record<string, Json> | Json[], string | number]> {
  if (Array.isArray(v)) v.forEach((item, i) => (out.push([v, i]), slots(item, out)));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) (out.push([v, k]), slots(v[k], out));
  return out;
}

function differentType(v: Json, rnd: () => number): Json {
  const options: Json[] = [42, -1, 'text', true, null, [], {}, [1, 'a'], { a: 1 }, 1.5];
  const pick = options.filter((o) => typeof o !== typeof v || Array.isArray(o) !== Array.isArray(v));
  return pick[Math.floor(rnd() * pick.length)];
}

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const doc = loadSpec();
  const ops: Prepared[] = listOperations(doc)
    .filter((op) => !o.exclude?.includes(op.operationId))
    .map((op) => {
      const item =
        doc.paths[Object.keys(doc.paths).find((p) => p.split('#')[0] === op.path && doc.paths[p][op.method.toLowerCase()]?.operationId === op.operationId)!];
      const spec = item[op.method.toLowerCase()];
      const example = local(spec.requestBody?.content?.['application/json']?.example as Json | undefined);
      const pathNames = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      return { op, example, pathNames };
    });
  const rnd = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const report: FuzzReport = { requests: 0, operations: ops.length, byStatus: {}, byMutation: {}, jobs: 0, jobFailures: {}, findings: [], durationMs: 0 };
  const jobs: Array<{ location: string; operationId: string; mutation: string }> = [];
  const hex = () => Array.from({ length: 32 }, () => '0123456789abcdef'[Math.floor(rnd() * 16)]).join('');

  // The requests, made up front from the seed (the order of answers does not change what is sent).
  const plans = Array.from({ length: o.requests }, (_, i) => {
    const { op, example, pathNames } = ops[i % ops.length];
    const mutations: string[] = [];
    const headers: Record<string, string> = { Authorization: `OAuth ${o.session}`, 'X-API-Timeout': '3' };
    let body: Json | undefined = clone(example) ?? (op.x.bodyKey ? { [op.x.bodyKey]: {} } : undefined);
    const params: Record<string, string> = {};
    for (const name of pathNames) params[name] = o.knownUuids?.length && rnd() < 0.3 ? pick(o.knownUuids) : hex();
    let query = '';
    let rawBody: string | undefined;
    // One request in ten goes as the example is (it reaches the handlers); the rest carry 1–3 mutations.
    const count = rnd() < 0.1 ? 0 : 1 + Math.floor(rnd() * 3);
    for (let m = 0; m < count; m++) {
      const kind = pick(['type', 'huge', 'string', 'proto', 'missing', 'long', 'uuid', 'query', 'header', 'extra', 'array', 'rawjson'] as const);
      const where = body !== undefined ? slots(body) : [];
      switch (kind) {
        case 'type':
        case 'huge':
        case 'string':
        case 'long': {
          if (!where.length) {
            query += `&${pick(QUERY_MUTATIONS)}`;
            break;
          }
          const [c, k] = pick(where);
          const value =
            kind === 'type'
              ? differentType((c as any)[k], rnd)
              : kind === 'huge'
                ? pick(HUGE)
                : kind === 'string'
                  ? `${pick(NASTY_STRINGS)}`
                  : 'x'.repeat(pick([256, 4097, 70_000]));
          (c as any)[k] = value;
          break;
        }
        case 'proto': {
          const objects = [body, ...where.map(([c, k]) => (c as any)[k])].filter((v) => v && typeof v === 'object' && !Array.isArray(v));
          if (objects.length)
            rawBody = JSON.stringify(body).replace(/^\{/, `{"${pick(PROTO_KEYS)}":${pick(['{"polluted":1}', '1', '{"prototype":{"polluted":1}}'])},`);
          else query += `&${pick(['__proto__[polluted]=1', 'constructor[prototype][polluted]=1', '__proto__=1'])}`;
          break;
        }
        case 'missing': {
          if (where.length) {
            const [c, k] = pick(where);
            if (Array.isArray(c)) c.splice(Number(k), 1);
            else delete c[k as string];
          } else body = undefined;
          break;
        }
        case 'uuid':
          if (pathNames.length) params[pick(pathNames)] = pick(BAD_UUIDS);
          else query += `&uuid=${pick(BAD_UUIDS)}`;
          break;
        case 'query':
          query += `&${pick(QUERY_MUTATIONS)}`;
          break;
        case 'header': {
          const [h, v] = pick(HEADER_MUTATIONS);
          headers[h] = v;
          break;
        }
        case 'extra': {
          const objects = where.map(([c, k]) => (c as any)[k]).filter((v) => v && typeof v === 'object' && !Array.isArray(v));
          const target = objects.length ? pick(objects) : body && typeof body === 'object' && !Array.isArray(body) ? body : undefined;
          if (target)
            (target as Record<string, Json>)[pick(['unknownField', 'x', 'systemTags', 'resourceUuid'])] = pick([1, 'a', null, ['\u0000'], { a: '\ud800' }]);
          break;
        }
        case 'array':
          body = pick([[], [body ?? null], 'string', 42, null, true]);
          break;
        case 'rawjson':
          rawBody = pick([
            '{',
            '{"a":}',
            '[',
            '"\\u',
            '{"params":{"name":"\\ud800"}}',
            'null',
            '{"__proto__":{"x":1}}',
            '{"a":1,"a":2}',
            `{"params":${'['.repeat(3000)}}`,
            '\u0000',
            'nan',
          ]);
          break;
      }
      mutations.push(kind);
    }
    const path = op.path.replace(/\{([^}]+)\}/g, (_, n) => (/%/.test(params[n]) ? params[n] : encodeURIComponent(params[n])));
    const url = `${path}${query ? `?${query.slice(1)}` : ''}`;
    const text = rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
    if (text !== undefined && !headers['Content-Type']) headers['Content-Type'] = 'application/json';
    return { op, method: op.method, url, headers, text, mutation: mutations.join('+') || 'none' };
  });

  const record = (f: FuzzFinding) => {
    if (report.findings.length < 200) report.findings.push(f);
  };
  let next = 0;
  const worker = async () => {
    while (next < plans.length) {
      const p = plans[next++];
      let status = 0;
      let answer = '';
      try {
        const res = await fetch(o.url + p.url, { method: p.method, headers: p.headers, body: p.method === 'GET' ? undefined : p.text });
        status = res.status;
        answer = await res.text();
      } catch (e) {
        record({
          operationId: p.op.operationId,
          mutation: p.mutation,
          status: 0,
          problem: `no answer: ${(e as Error).message}`,
          request: `${p.method} ${p.url.slice(0, 200)}`,
          answer: '',
        });
        continue;
      }
      report.requests++;
      report.byStatus[status] = (report.byStatus[status] ?? 0) + 1;
      for (const m of p.mutation.split('+')) report.byMutation[m] = (report.byMutation[m] ?? 0) + 1;
      const problem = judge(status, answer);
      if (problem)
        record({
          operationId: p.op.operationId,
          mutation: p.mutation,
          status,
          problem,
          request: `${p.method} ${p.url.slice(0, 200)} ${String(p.text).slice(0, 300)}`,
          answer: answer.slice(0, 300),
        });
      if (status === 202) {
        try {
          const location = JSON.parse(answer).location;
          if (location) jobs.push({ location, operationId: p.op.operationId, mutation: p.mutation });
        } catch {
          // judged above
        }
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 8 }, worker));

  // Every job it started ends, and none with an internal error.
  report.jobs = jobs.length;
  for (const j of jobs) {
    for (let i = 0; i < 100; i++) {
      const res = await fetch(j.location, { headers: { 'X-Job-Wait-Ms': '10000' } });
      const text = await res.text();
      if (res.status === 202) continue;
      if (res.status === 503) {
        const code = safeJson(text)?.error?.code ?? 'unparsable';
        report.jobFailures[code] = (report.jobFailures[code] ?? 0) + 1;
        if (code === 'SYS.1000')
          record({
            operationId: j.operationId,
            mutation: j.mutation,
            status: 503,
            problem: 'job failed with an internal error',
            request: j.location,
            answer: text.slice(0, 300),
          });
      }
      const problem = res.status === 200 || res.status === 503 ? judge(res.status === 503 ? 400 : 200, text) : `poll answered ${res.status}`;
      if (problem)
        record({
          operationId: j.operationId,
          mutation: j.mutation,
          status: res.status,
          problem: `job: ${problem}`,
          request: j.location,
          answer: text.slice(0, 300),
        });
      break;
    }
  }
  report.durationMs = Date.now() - started;
  return report;
}

function safeJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What is wrong with an answer, or undefined. */
export function judge(status: number, text: string): string | undefined {
  if (status >= 500 && status !== 503) return `HTTP ${status}`;
  if (/\bat [\w.<>]+ \(.*:\d+:\d+\)|\.ts:\d+:\d+|Failed query|\bparams:|INSERT INTO|SELECT .* FROM/.test(text)) return 'a stack trace or SQL in the answer';
  if (status >= 400) {
    const e = safeJson(text)?.error;
    if (!e || typeof e.code !== 'string' || typeof e.description !== 'string') return 'an error not in the ZStack shape';
    if (status === 503 && e.code === 'SYS.1000') return 'an internal error';
  }
  return undefined;
}
