// zstack-cli's command syntax, as upstream's (zstack-utility zstackcli): `<Api> key=value …`. Query APIs take
// conditions `<field><op><value>` plus reserved keys; other APIs take their parameters, converted to the type the
// spec gives them (numbers, booleans, comma lists, JSON maps such as networkServices='{"<provider>":["DHCP"]}').
import { INVENTORY_FIELDS, OPERATIONS, PARAMS, type OperationId } from '../generated/operations.js';
import type { OperationInfo, ParamInfo } from '../types.js';

/** A problem with what was typed; printed as a SYS.1007 ErrorCode. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const API_NAMES = Object.keys(OPERATIONS).sort() as OperationId[];

/** Reserved keys of Query APIs (upstream's list, plus `q` and `sort` of the REST API). */
export const QUERY_RESERVED = [
  'conditions',
  'count',
  'limit',
  'start',
  'timeout',
  'replyWithCount',
  'sortBy',
  'sortDirection',
  'sort',
  'fields',
  'groupBy',
  'q',
] as const;

const op = (name: OperationId): OperationInfo => OPERATIONS[name] as OperationInfo;

/** `QueryZone`, `APIQueryZoneMsg` and `queryzone` all name QueryZone. */
export function resolveApiName(typed: string): OperationId {
  const bare = typed.replace(/^API/, '').replace(/Msg$/, '');
  for (const candidate of [typed, bare]) if ((OPERATIONS as Record<string, unknown>)[candidate]) return candidate as OperationId;
  const lower = bare.toLowerCase();
  const found = API_NAMES.find((n) => n.toLowerCase() === lower);
  if (found) return found;
  const near = API_NAMES.map((n) => [n, distance(n.toLowerCase(), lower)] as const)
    .filter(([n, d]) => d <= Math.max(2, Math.floor(lower.length / 4)) || n.toLowerCase().includes(lower))
    .sort((a, b) => a[1] - b[1])
    .slice(0, 3)
    .map(([n]) => n);
  throw new UsageError(`unknown API ${typed}${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
}

/** Levenshtein distance (for "did you mean"). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** Splits an interactive line like a shell does: quotes ('…', "…") and backslash escapes; quotes are removed. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && (line[i + 1] === '"' || line[i + 1] === '\\')) cur += line[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inToken = true;
    } else if (c === '\\' && i + 1 < line.length) {
      // `\,` stays escaped for list splitting; any other escaped character is taken literally.
      cur += line[i + 1] === ',' ? '\\,' : line[i + 1];
      i++;
      inToken = true;
    } else if (/\s/.test(c)) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
    } else {
      cur += c;
      inToken = true;
    }
  }
  if (quote) throw new UsageError(`unterminated ${quote} quote`);
  if (inToken) out.push(cur);
  return out;
}

/** Splits a comma list, honouring `\,` as a literal comma; empty items (`a,,b`, a trailing `,`) are dropped. */
export function splitList(value: string): string[] {
  return value
    .split(/(?<!\\),/)
    .map((s) => s.replace(/\\,/g, ',').trim())
    .filter((s) => s !== '');
}

const OPS = ['!?=', '!~=', '?=', '~=', '!=', '>=', '<=', '=', '>', '<'];

/** `field<op>value` → [field, op, value], or undefined when the token is not a condition. */
export function splitCondition(token: string): [string, string, string] | undefined {
  const m = /[!?~<>=]/.exec(token);
  if (!m || m.index === 0) return undefined;
  const rest = token.slice(m.index);
  const found = OPS.find((o) => rest.startsWith(o));
  if (!found) return undefined;
  return [token.slice(0, m.index), found, rest.slice(found.length)];
}

/** One condition in the REST API's `q` syntax, with upstream's shortcuts: `=null`, `!=null`, `~=` auto-wrapped. */
export function conditionOf(field: string, opText: string, value: string): string {
  if (!/^[A-Za-z_][\w.]*$/.test(field)) throw new UsageError(`bad query field ${JSON.stringify(field)}`);
  if (value === 'null' && opText === '=') return `${field} is null`;
  if (value === 'null' && opText === '!=') return `${field} not null`;
  if ((opText === '~=' || opText === '!~=') && !value.includes('%')) value = `%${value}%`;
  return `${field}${opText}${value}`;
}

function convert(p: ParamInfo, raw: string, api: string): unknown {
  const fail = (why: string): never => {
    throw new UsageError(`${api}: parameter ${p.name} ${why}, got [${raw}]`);
  };
  const scalar = (type: string | undefined, v: string): unknown => {
    if (type === 'integer' || type === 'number') {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n)))
        fail(`must be ${type === 'integer' ? 'an integer' : 'a number'}`);
      return n;
    }
    if (type === 'boolean') {
      if (/^true$/i.test(v)) return true;
      if (/^false$/i.test(v)) return false;
      fail('must be true or false');
    }
    return v;
  };
  const json = (): unknown => {
    try {
      return JSON.parse(raw);
    } catch {
      // upstream evaluates these as Python literals: accept single quotes too
      try {
        return JSON.parse(raw.replace(/'/g, '"'));
      } catch {
        return fail(
          p.type === 'object'
            ? `must be a JSON object, e.g. ${p.name}='{"<networkServiceProviderUuid>":["DHCP","DNS"]}'`
            : `must be a comma list or a JSON list, e.g. ${p.name}=a,b or ${p.name}='["a","b"]'`,
        );
      }
    }
  };
  switch (p.type) {
    case 'array': {
      const items = raw.trim().startsWith('[') ? json() : splitList(raw);
      if (!Array.isArray(items)) return fail('must be a list');
      return items.map((i) => (typeof i === 'string' ? scalar(p.items, i) : i));
    }
    case 'object': {
      const v = json();
      if (!v || typeof v !== 'object' || Array.isArray(v)) return fail('must be a JSON object');
      return v;
    }
    default:
      return scalar(p.type, raw);
  }
}

export interface ParsedCommand {
  apiName: OperationId;
  params: Record<string, unknown>;
  /** From the reserved `timeout=<seconds>`. */
  timeoutMs?: number;
}

/** `QueryL3Network fields=l2NetworkUuid, uuid=<uuid>` → the API and its SDK parameters. */
export function parseCommand(tokens: string[]): ParsedCommand {
  if (tokens.length === 0) throw new UsageError('no API given');
  const apiName = resolveApiName(tokens[0]);
  const info = op(apiName);
  const params: Record<string, unknown> = {};
  let timeoutMs: number | undefined;
  const known = new Map(PARAMS[apiName].map((p) => [p.name, p]));
  const seconds = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`timeout must be a number of seconds, got [${v}]`);
    return n * 1000;
  };

  if (info.kind === 'query') {
    const q: string[] = [];
    for (const token of tokens.slice(1)) {
      const cond = splitCondition(token);
      if (!cond) throw new UsageError(`${apiName}: [${token}] is neither a condition <field><op><value> nor a reserved key=value`);
      const [key, opText, value] = cond;
      if (opText === '=' && (QUERY_RESERVED as readonly string[]).includes(key)) {
        switch (key) {
          case 'count':
          case 'replyWithCount':
            params[key] = convert({ name: key, in: 'query', type: 'boolean' }, value, apiName);
            break;
          case 'limit':
          case 'start':
            params[key] = convert({ name: key, in: 'query', type: 'integer' }, value, apiName);
            break;
          case 'fields':
            // `fields=l2NetworkUuid,` — the release notes' spelling, with its trailing comma — is fine
            params.fields = splitList(value).join(',');
            break;
          case 'timeout':
            timeoutMs = seconds(value);
            break;
          case 'conditions': {
            const list = value.trim().startsWith('[') ? (JSON.parse(value) as unknown[]) : [value];
            q.push(...list.map(String));
            break;
          }
          case 'q':
            q.push(value);
            break;
          default:
            params[key] = value;
        }
        continue;
      }
      q.push(conditionOf(key, opText, value));
    }
    if (q.length) params.q = q;
    if (params.fields === '') delete params.fields;
    return { apiName, params, timeoutMs };
  }

  for (const token of tokens.slice(1)) {
    const eq = token.indexOf('=');
    if (eq <= 0) throw new UsageError(`${apiName}: [${token}] is not key=value`);
    const key = token.slice(0, eq);
    const value = token.slice(eq + 1);
    const p = known.get(key);
    if (!p) {
      if (key === 'timeout') {
        timeoutMs = seconds(value);
        continue;
      }
      const names = [...known.keys()];
      throw new UsageError(`${apiName}: unknown parameter ${key}${names.length ? ` (parameters: ${names.join(', ')})` : ' (it takes no parameters)'}`);
    }
    params[key] = convert(p, value, apiName);
  }
  const missing = PARAMS[apiName].filter((p) => p.required && params[p.name] === undefined).map((p) => p.name);
  if (missing.length) throw new UsageError(`${apiName}: missing required parameter${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  return { apiName, params, timeoutMs };
}

/** What can follow `<Api> ` on the line: parameter names for most APIs, fields and reserved keys for queries. */
export function parameterNames(apiName: OperationId): string[] {
  const info = op(apiName);
  if (info.kind === 'query') {
    const fields = INVENTORY_FIELDS[info.inventory ?? ''] ?? [];
    return [...fields, ...QUERY_RESERVED.filter((k) => k !== 'q' && k !== 'conditions')];
  }
  return [...PARAMS[apiName].map((p) => p.name), 'timeout'];
}

/** Tab completion for the interactive mode (node:readline's completer contract: [candidates, the word completed]). */
export function complete(line: string): [string[], string] {
  const endsWithSpace = /\s$/.test(line);
  let words: string[];
  try {
    words = tokenize(line);
  } catch {
    return [[], ''];
  }
  const current = endsWithSpace ? '' : (words.pop() ?? '');
  if (words.length === 0) {
    const builtins = ['help', 'exit', 'quit'];
    const hits = [...API_NAMES, ...builtins].filter((n) => n.startsWith(current));
    return [hits.length ? hits.map((h) => h + ' ') : [], current];
  }
  if (words[0] === 'help') return [API_NAMES.filter((n) => n.startsWith(current)), current];
  let apiName: OperationId;
  try {
    apiName = resolveApiName(words[0]);
  } catch {
    return [[], current];
  }
  const info = op(apiName);
  // fields=a,b,<tab>: complete the field after the last comma
  const fieldsMatch = /^fields=(.*,)?([^,]*)$/.exec(current);
  if (info.kind === 'query' && fieldsMatch) {
    const own = (INVENTORY_FIELDS[info.inventory ?? ''] ?? []).filter((f) => !f.includes('.'));
    const prefix = `fields=${fieldsMatch[1] ?? ''}`;
    return [own.filter((f) => f.startsWith(fieldsMatch[2])).map((f) => prefix + f), current];
  }
  if (current.includes('=')) return [[], current];
  const used = new Set(words.slice(1).map((w) => w.split(/[!?~<>=]/)[0]));
  const names = parameterNames(apiName).filter((n) => n.startsWith(current) && (info.kind === 'query' || !used.has(n)));
  // Joins complete one level at a time: `vmNics.` first, then `vmNics.ip=`.
  const shown = new Set<string>();
  for (const n of names) {
    const dot = n.indexOf('.', current.length);
    shown.add(dot >= 0 && !current.includes('.') ? n.slice(0, dot + 1) : `${n}=`);
  }
  return [[...shown], current];
}
