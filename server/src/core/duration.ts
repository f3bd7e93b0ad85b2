// Durations as upstream writes them: a bare number is milliseconds; units s, m, h, d (and w, y).
const UNITS: Record<string, number> = { '': 1, ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3, y: 31536000e3 };

export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+)\s*(ms|[smhdwy]?)\s*$/i.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]) * UNITS[m[2].toLowerCase()];
  return Number.isSafeInteger(value) ? value : undefined;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86400e3], ['h', 3600e3], ['m', 60e3], ['s', 1e3]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return String(ms);
}
