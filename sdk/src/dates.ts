// Upstream's date format, `Jan 30, 2016 3:01:03 PM`, carries no zone: the server means UTC, but `new Date(s)` reads
// it in the local zone. `parseZStackDate` reads it as UTC; the client option `dates: 'iso'` rewrites every date field
// of the replies (the fields the spec types as Date: DATE_FIELDS) to ISO 8601 with its zone, `2016-01-30T15:01:03.000Z`.
import { DATE_FIELDS } from './generated/operations.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ZSTACK_DATE = /^([A-Z][a-z]{2}) (\d{1,2}), (\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([AP])M$/;

/** A date as the server sends it (`Jan 30, 2016 3:01:03 PM`, UTC) as a Date; `undefined` for anything else. */
export function parseZStackDate(text: string): Date | undefined {
  const m = ZSTACK_DATE.exec(text);
  const month = m ? MONTHS.indexOf(m[1]) : -1;
  if (!m || month < 0) return undefined;
  const hour12 = Number(m[4]);
  if (hour12 < 1 || hour12 > 12) return undefined;
  const hour = (hour12 % 12) + (m[7] === 'P' ? 12 : 0);
  return new Date(Date.UTC(Number(m[3]), month, Number(m[2]), hour, Number(m[5]), Number(m[6])));
}

/** The reply with every date field (by the spec) in ISO 8601 with its zone; other values untouched. */
export function isoDates<T>(value: T): T {
  if (Array.isArray(value)) return value.map(isoDates) as T;
  if (!value || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const date = typeof v === 'string' && DATE_FIELDS.has(k) ? parseZStackDate(v) : undefined;
    out[k] = date ? date.toISOString() : isoDates(v);
  }
  return out as T;
}
