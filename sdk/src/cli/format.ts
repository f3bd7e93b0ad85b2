// Output of zstack-cli: upstream's pretty JSON (keys sorted, 2-space indent: `{"inventories": [...], "success": true}`)
// or a plain text table.

/** A copy with object keys sorted at every level, as upstream's `json.dumps(sort_keys=True)`. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

export const toJson = (value: unknown): string => JSON.stringify(sortKeys(value), null, 2);

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.every((x) => x === null || typeof x !== 'object') ? v.join(',') : `[${v.length}]`;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function grid(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * `-o table`: inventories as rows (one column per field: the `fields=` of the query in their order, else sorted), an
 * inventory as field/value pairs.
 */
export function toTable(reply: unknown, fields?: readonly string[]): string {
  if (!reply || typeof reply !== 'object') return String(reply);
  const r = reply as { inventories?: Record<string, unknown>[]; inventory?: Record<string, unknown>; total?: number; success?: boolean };
  const parts: string[] = [];
  if (Array.isArray(r.inventories)) {
    const columns: string[] = [...(fields ?? [])].filter((f) => r.inventories!.some((row) => f in row));
    for (const row of r.inventories) for (const k of Object.keys(sortKeys(row) as object)) if (!columns.includes(k)) columns.push(k);
    parts.push(
      r.inventories.length
        ? grid(
            columns,
            r.inventories.map((row) => columns.map((c) => cell(row[c]))),
          )
        : '(no rows)',
    );
  } else if (r.inventory && typeof r.inventory === 'object') {
    const inv = sortKeys(r.inventory) as Record<string, unknown>;
    parts.push(
      grid(
        ['field', 'value'],
        Object.keys(inv).map((k) => [k, cell(inv[k])]),
      ),
    );
  } else if (r.total === undefined) {
    const rest = sortKeys(reply) as Record<string, unknown>;
    const keys = Object.keys(rest).filter((k) => k !== 'success');
    parts.push(
      keys.length
        ? grid(
            ['field', 'value'],
            keys.map((k) => [k, cell(rest[k])]),
          )
        : 'success',
    );
  }
  if (r.total !== undefined) parts.push(`total: ${r.total}`);
  return parts.join('\n');
}
