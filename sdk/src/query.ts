// Query helpers: ZStack condition strings from the typed object form, and the normalisation of Query API params.
import type { ConditionOperator } from './types.js';

const OPERATORS: readonly ConditionOperator[] = ['=', '!=', '>', '<', '>=', '<=', '?=', '!?=', '~=', '!~='];

const text = (v: unknown): string => {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new TypeError(`query condition values must be strings, numbers or booleans, got ${JSON.stringify(v)}`);
};

function one(field: string, op: string, value: unknown): string {
  if (op === 'is null') return `${field} is null`;
  if (op === 'not null') return `${field} not null`;
  if (!(OPERATORS as readonly string[]).includes(op))
    throw new TypeError(`unknown query operator ${JSON.stringify(op)} on ${field} (use one of ${OPERATORS.join(' ')}, 'is null', 'not null')`);
  if (value === null) {
    if (op === '=') return `${field} is null`;
    if (op === '!=') return `${field} not null`;
    throw new TypeError(`${field}${op}null: null only goes with = or !=`);
  }
  if (Array.isArray(value)) {
    if (op === '=' || op === '?=') return `${field}?=${value.map(text).join(',')}`;
    if (op === '!=' || op === '!?=') return `${field}!?=${value.map(text).join(',')}`;
    throw new TypeError(`${field}${op}: a list only goes with ?= or !?=`);
  }
  return `${field}${op}${text(value)}`;
}

/**
 * ZStack condition strings (`name=x`, `cpuNum>=2`, `vmNics.ip?=a,b`, `description is null`) from the object form
 * `{ name: 'x', cpuNum: { '>=': 2 }, 'vmNics.ip': ['a', 'b'], description: null }`. Several operators on one field
 * are ANDed (`{ cpuNum: { '>=': 2, '<=': 8 } }`).
 */
export function conditionsOf(where: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [field, value] of Object.entries(where)) {
    if (value === undefined) continue;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0) throw new TypeError(`empty condition on ${field}`);
      for (const [op, v] of entries) if (v !== undefined) out.push(one(field, op, v));
    } else out.push(one(field, '=', value));
  }
  return out;
}

/** The wire form of a Query API's parameters: `q` as a list of strings, `fields` as `a,b`. */
export function normalizeQueryParams(params: Record<string, unknown>): Record<string, unknown> {
  const out = { ...params };
  const q = params.q;
  if (typeof q === 'string') out.q = [q];
  else if (Array.isArray(q)) out.q = q.map((c) => text(c));
  else if (q && typeof q === 'object') out.q = conditionsOf(q as Record<string, unknown>);
  if (Array.isArray(params.fields)) out.fields = params.fields.join(',');
  return out;
}
