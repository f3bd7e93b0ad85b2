// Upstream's Gson default date format: `Jan 30, 2016 3:01:03 PM`, rendered in UTC.
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function formatDate(d: Date | null | undefined): string | undefined {
  if (!d) return undefined;
  const h = d.getUTCHours();
  const hour12 = h % 12 === 0 ? 12 : h % 12;
  const mm = String(d.getUTCMinutes()).padStart(2, '0');
  const ss = String(d.getUTCSeconds()).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()} ${hour12}:${mm}:${ss} ${h < 12 ? 'AM' : 'PM'}`;
}

/** Parses upstream's format, ISO 8601 or epoch milliseconds; undefined when it is none of them. */
export function parseDate(text: string): Date | undefined {
  const m = /^([A-Z][a-z]{2}) (\d{1,2}), (\d{4}) (\d{1,2}):(\d{2}):(\d{2}) (AM|PM)$/.exec(text.trim());
  if (m) {
    const month = MONTHS.indexOf(m[1]);
    if (month < 0) return undefined;
    let hour = Number(m[4]) % 12;
    if (m[7] === 'PM') hour += 12;
    return new Date(Date.UTC(Number(m[3]), month, Number(m[2]), hour, Number(m[5]), Number(m[6])));
  }
  if (/^\d{10,}$/.test(text)) return new Date(Number(text));
  const iso = Date.parse(text);
  return Number.isNaN(iso) || !/^\d{4}-\d{2}-\d{2}/.test(text) ? undefined : new Date(iso);
}
