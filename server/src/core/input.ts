// What every request value must be before anything uses it — checked once, at the door (the router), and again
// where values join a shared statement (jobs.submit): strings PostgreSQL can store (no NUL, no unpaired UTF-16
// surrogate), numbers JavaScript and PostgreSQL agree on (|n| ≤ 2^53 − 1), no prototype-polluting keys, bounded
// nesting. A refusal is a 400 SYS.1007 naming the field; nothing of the value is echoed.
import { argErr } from './errors.js';

/** The longest delay Node timers honour (2^31 − 1 ms ≈ 24.8 days): every API timeout is at most this. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** X-API-Timeout's largest value, in seconds. */
export const MAX_TIMEOUT_SECONDS = Math.floor(MAX_TIMEOUT_MS / 1000);
/** Keys never accepted in a request object (they would reach Object.prototype through a careless merge). */
export const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_DEPTH = 32;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be taken, or undefined when it can. */
export function badString(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character';
  if (LONE_SURROGATE.test(s)) return 'contains an unpaired UTF-16 surrogate';
  return undefined;
}

/** The first reason `value` (a parsed request part) cannot be taken, with the field's path; undefined when fine. */
export function inputProblem(value: unknown, root: string): string | undefined {
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: value, path: root, depth: 0 }];
  while (stack.length) {
    const { v, path, depth } = stack.pop()!;
    if (typeof v === 'string') {
      const why = badString(v);
      if (why) return `field[${path}] ${why}`;
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v) || Math.abs(v) > Number.MAX_SAFE_INTEGER) return `field[${path}] is out of range (at most ±${Number.MAX_SAFE_INTEGER})`;
    } else if (v && typeof v === 'object') {
      if (depth >= MAX_DEPTH) return `field[${path}] is nested deeper than ${MAX_DEPTH} levels`;
      if (Array.isArray(v)) v.forEach((item, i) => stack.push({ v: item, path: `${path}[${i}]`, depth: depth + 1 }));
      else {
        for (const key of Object.keys(v)) {
          const at = path ? `${path}.${key}` : key;
          if (FORBIDDEN_KEYS.has(key)) return `field[${safeName(at)}] is not allowed (reserved name)`;
          const why = badString(key);
          if (why) return `a field name under [${path || 'the body'}] ${why}`;
          stack.push({ v: (v as Record<string, unknown>)[key], path: at, depth: depth + 1 });
        }
      }
    }
  }
  return undefined;
}

/** Throws the 400 for the first problem of `value`. */
export function checkInput(value: unknown, root: string): void {
  const problem = inputProblem(value, root);
  if (problem) throw argErr(problem);
}

/** A field path fit for a message (no control characters, bounded). */
function safeName(path: string): string {
  const s = path.replace(/[\u0000-\u001f\u007f]/g, '?');
  return s.length > 200 ? s.slice(0, 200) + '…' : s;
}

/** X-API-Timeout: whole seconds from 1 to MAX_TIMEOUT_SECONDS, or a 400. */
export function headerTimeoutSeconds(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = String(header).trim();
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_TIMEOUT_SECONDS)) {
    throw argErr(`header X-API-Timeout must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS} (24.8 days), got [${text.slice(0, 32)}]`);
  }
  return n;
}
