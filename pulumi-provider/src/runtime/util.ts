// Pure helpers of the provider runtime: Pulumi's wire sentinels, IPv4 arithmetic, input checking with per-property
// failures, and the diff rule shared by every resource (replace vs update in place).

/** What the engine sends for a value not known yet (preview); it arrives as a plain string, possibly nested. */
export const UNKNOWN = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';

export type Props = Record<string, unknown>;

export interface CheckFailure {
  property: string;
  reason: string;
}
export interface CheckResult {
  inputs: Props;
  failures: CheckFailure[];
}
export interface DiffResult {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace: boolean;
}

export function hasUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(hasUnknown);
  if (v && typeof v === 'object') return Object.values(v).some(hasUnknown);
  return false;
}

/** A copy without `undefined` values and without the engine's internal keys (`__provider`, …). */
export function clean(props: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || k.startsWith('__')) continue;
    out[k] = v;
  }
  return out;
}

/** A JSON-safe copy (no `undefined`, no functions, dates as strings): what `Struct.fromJavaScript` accepts. */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v ?? null)) as T;
}

export const UUID_RE = /^[0-9a-f]{32}$/;

/** Strict dotted quad → 32-bit unsigned integer, or undefined. */
export function parseIpv4(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i];
    if (part.length > 1 && part.startsWith('0')) return undefined;
    const v = Number(part);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Prefix length of a valid netmask (contiguous ones, not 0.0.0.0), or undefined. */
export function netmaskPrefix(mask: unknown): number | undefined {
  const n = parseIpv4(mask);
  if (n === undefined || n === 0) return undefined;
  const inverted = ~n >>> 0;
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  return 32 - Math.log2(inverted + 1);
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Cidr {
  network: number;
  prefix: number;
  /** `a.b.c.d/n` with the host bits cleared. */
  canonical: string;
}

export function parseCidr(s: unknown): Cidr | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m) return undefined;
  const ip = parseIpv4(m[1]);
  const prefix = Number(m[2]);
  if (ip === undefined || prefix > 32) return undefined;
  const network = (ip & prefixMask(prefix)) >>> 0;
  return { network, prefix, canonical: `${formatIpv4(network)}/${prefix}` };
}

/** Network service types ZStack knows (v1.1 and later releases). */
export const SERVICE_TYPES = [
  'DHCP',
  'DNS',
  'SNAT',
  'PortForwarding',
  'Eip',
  'LoadBalancer',
  'Userdata',
  'SecurityGroup',
  'HostRoute',
  'IPsec',
  'VipQos',
  'CentralizedDNS',
  'VRouterRoute',
] as const;

interface StringRule {
  required?: boolean;
  max?: number;
  oneOf?: readonly string[];
  pattern?: RegExp;
  patternText?: string;
}

/** Validates one resource's inputs property by property; unknown (preview) values are accepted as they are. */
export class Checker {
  readonly failures: CheckFailure[] = [];
  readonly inputs: Props;

  constructor(news: Props) {
    this.inputs = { ...news };
  }

  fail(property: string, reason: string): void {
    this.failures.push({ property, reason });
  }

  /** Present and known (not a preview unknown). */
  known(key: string): boolean {
    const v = this.inputs[key];
    return v !== undefined && v !== null && !hasUnknown(v);
  }

  has(key: string): boolean {
    return this.inputs[key] !== undefined && this.inputs[key] !== null;
  }

  string(key: string, rule: StringRule = {}): string | undefined {
    const v = this.inputs[key];
    if (v === undefined || v === null) {
      delete this.inputs[key];
      if (rule.required) this.fail(key, `${key} is required`);
      return undefined;
    }
    if (v === UNKNOWN) return undefined;
    if (typeof v !== 'string') return void this.fail(key, `${key} must be a string, got ${JSON.stringify(v)}`);
    if (rule.required && v.length === 0) return void this.fail(key, `${key} must not be empty`);
    if (rule.max !== undefined && v.length > rule.max) return void this.fail(key, `${key} is longer than ${rule.max} characters`);
    if (rule.oneOf && !rule.oneOf.includes(v)) return void this.fail(key, `${key} must be one of ${rule.oneOf.join(', ')}, got "${v}"`);
    if (rule.pattern && !rule.pattern.test(v)) return void this.fail(key, `${key} must be ${rule.patternText ?? `like ${rule.pattern}`}, got "${v}"`);
    return v;
  }

  uuid(key: string, required: boolean): string | undefined {
    return this.string(key, { required, pattern: UUID_RE, patternText: 'a ZStack uuid (32 lowercase hex digits)' });
  }

  name(key = 'name', required = true): string | undefined {
    return this.string(key, { required, max: 255 });
  }

  description(key = 'description'): string | undefined {
    return this.string(key, { max: 2048 });
  }

  ipv4(key: string, required = false): number | undefined {
    const v = this.string(key, { required });
    if (v === undefined) return undefined;
    const n = parseIpv4(v);
    if (n === undefined) this.fail(key, `${key} must be an IPv4 address, got "${v}"`);
    return n;
  }

  bool(key: string): boolean | undefined {
    const v = this.inputs[key];
    if (v === undefined || v === null) return void delete this.inputs[key];
    if (v === UNKNOWN) return undefined;
    if (typeof v !== 'boolean') return void this.fail(key, `${key} must be a boolean, got ${JSON.stringify(v)}`);
    return v;
  }

  int(key: string, min: number, max: number): number | undefined {
    const v = this.inputs[key];
    if (v === undefined || v === null) return void delete this.inputs[key];
    if (v === UNKNOWN) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return void this.fail(key, `${key} must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A list of strings: each item checked by `item` (returns a reason or undefined), duplicates refused. */
  stringList(key: string, opts: { required?: boolean; nonEmpty?: boolean; item?: (s: string) => string | undefined; sort?: boolean }): string[] | undefined {
    const v = this.inputs[key];
    if (v === undefined || v === null) {
      delete this.inputs[key];
      if (opts.required) this.fail(key, `${key} is required`);
      return undefined;
    }
    if (v === UNKNOWN) return undefined;
    if (!Array.isArray(v)) return void this.fail(key, `${key} must be a list of strings, got ${JSON.stringify(v)}`);
    if (opts.nonEmpty && v.length === 0) return void this.fail(key, `${key} must not be empty`);
    const seen = new Set<string>();
    let ok = true;
    v.forEach((item, i) => {
      if (item === UNKNOWN) return;
      if (typeof item !== 'string') {
        ok = false;
        return this.fail(`${key}[${i}]`, `${key}[${i}] must be a string, got ${JSON.stringify(item)}`);
      }
      const reason = opts.item?.(item);
      if (reason) {
        ok = false;
        return this.fail(`${key}[${i}]`, `${key}[${i}]: ${reason}`);
      }
      if (seen.has(item)) {
        ok = false;
        return this.fail(`${key}[${i}]`, `${key} lists "${item}" twice`);
      }
      seen.add(item);
    });
    if (!ok) return undefined;
    if (opts.sort && !hasUnknown(v)) this.inputs[key] = [...(v as string[])].sort();
    return hasUnknown(v) ? undefined : (this.inputs[key] as string[]);
  }

  result(): CheckResult {
    return { inputs: this.inputs, failures: this.failures };
  }
}

function sameValue(a: unknown, b: unknown, asSet: boolean): boolean {
  if (asSet && Array.isArray(a) && Array.isArray(b)) return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export interface DiffRule {
  /** Changing these replaces the resource. */
  replace: readonly string[];
  /** Changing these updates the resource in place. */
  update: readonly string[];
  /** Lists compared as sets. */
  sets?: readonly string[];
  deleteBeforeReplace?: boolean;
}

/**
 * The diff of every resource here: `olds` are the old *outputs* (the engine sends those), `news` the checked inputs.
 * An input left out is not managed (no diff); an unknown input (preview) counts as a change.
 */
export function diffProps(olds: Props, news: Props, rule: DiffRule): DiffResult & { changed: string[] } {
  const changed: string[] = [];
  for (const key of [...rule.replace, ...rule.update]) {
    const nv = news[key];
    if (nv === undefined || nv === null) continue;
    if (hasUnknown(nv) || !sameValue(olds[key], nv, rule.sets?.includes(key) ?? false)) changed.push(key);
  }
  const replaces = changed.filter((k) => rule.replace.includes(k));
  return { changes: changed.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 && (rule.deleteBeforeReplace ?? false), changed };
}

/** Orders `actual` like `preferred` (items of `preferred` first, in its order), the rest sorted: stable refresh output. */
export function orderLike(actual: readonly string[], preferred: unknown): string[] {
  const pref = Array.isArray(preferred) ? (preferred.filter((x) => typeof x === 'string') as string[]) : [];
  const first = pref.filter((x) => actual.includes(x));
  const rest = actual.filter((x) => !first.includes(x)).sort();
  return [...first, ...rest];
}
