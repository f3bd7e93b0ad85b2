// Durations, one grammar for the spec's timeouts (x-zstack timeout), global configs, the server and the SDK.
//
//   duration := <digits> [ws] [unit]      surrounding whitespace allowed; units are case-insensitive
//   unit     := ms | s | m | h | d | w | y (none = milliseconds, upstream's bare numbers)
//
// w = 7 days, y = 365 days. The value must be a safe integer of milliseconds. Anything else (fractions, signs,
// several parts like "1h30m", unknown units) is not a duration: parseDuration answers undefined.
const UNITS: Record<string, number> = { '': 1, ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3, y: 31536000e3 };

/** Milliseconds of a duration such as `30m`, `5s`, `250ms`, `1500` (ms); undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+)\s*(ms|[smhdwy]?)\s*$/i.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]) * UNITS[m[2].toLowerCase()];
  return Number.isSafeInteger(value) ? value : undefined;
}

/** The shortest exact writing of a duration: the largest of d, h, m, s that divides it, else bare milliseconds. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86400e3],
    ['h', 3600e3],
    ['m', 60e3],
    ['s', 1e3],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return String(ms);
}
