// Upstream wire fidelity, in one place: what upstream's REST server tolerates in a request (any top-level body key
// its SDKs send, unknown fields, default values its SDKs always send) and what it adds to a reply (the `schema` map
// of inventory classes). Everything here is read from the spec: `x-zstack-class` / `x-zstack-subclasses` on
// inventory schemas, `x-zstack-unset` on request properties.
import { argErr } from './errors.js';
import type { SpecOperation } from './spec.js';

/** Keys that never reach a message, whatever the schema says (prototype pollution). */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Refuses (SYS.1007) a request whose JSON has a `__proto__`, `constructor` or `prototype` key at any depth. */
export function assertNoForbiddenKeys(value: unknown, path = '', depth = 0): void {
  if (!value || typeof value !== 'object' || depth > 64) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertNoForbiddenKeys(v, `${path}[${i}]`, depth + 1));
    return;
  }
  for (const key of Object.keys(value)) {
    const where = path ? `${path}.${key}` : key;
    if (FORBIDDEN_KEYS.has(key)) throw argErr(`field[${where}] is not allowed`);
    assertNoForbiddenKeys((value as Record<string, unknown>)[key], where, depth + 1);
  }
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * Upstream reads the fields from `body[parameterName]`, and its SDKs send different names for it: `params` for
 * creates, the action name for actions, `"null"` (AttachL2NetworkToCluster, SDKs ≥ 2.0) and `""` (older SDKs:
 * AttachPrimaryStorageToCluster, AttachBackupStorageToZone, AttachDataVolumeToVm). A body without the operation's own
 * key but with one of these gets it under the operation's key; other top-level keys are ignored (removed by the
 * body's validation) as upstream's Gson ignores them.
 */
export function normalizeBodyKey(body: Record<string, unknown> | undefined, op: SpecOperation): Record<string, unknown> | undefined {
  const key = op.x.bodyKey;
  if (!key || !body || typeof body !== 'object' || Array.isArray(body) || key in body) return body;
  for (const alias of ['params', lowerFirst(op.operationId), 'null', '']) {
    if (alias !== key && alias in body) {
      const { [alias]: inner, ...rest } = body;
      return { ...rest, [key]: inner };
    }
  }
  return body;
}

type Node = Record<string, any>;

interface Resolved {
  /** JSON types the node allows (from `type`, and from its allOf/anyOf/oneOf members). */
  types: Set<string>;
  cls?: string;
  subclasses?: { property: string; classes: Record<string, string> };
  properties: Record<string, Node>;
  items?: Node;
  map?: Node;
  /** The properties that can hold an inventory (not declared scalar): what `walk` descends into (built on first use). */
  containers?: Map<string, Node>;
  /** The same for `map` (additionalProperties): undefined when it is declared scalar. */
  mapContainer?: Node | null;
  /** Declared scalar: never holds an inventory (built on first use). */
  scalar?: boolean;
}

const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

/** Reads the spec once per schema node: inventory classes for the `schema` map, unset values for requests. */
export class WireFormat {
  private resolved = new WeakMap<Node, Resolved>();
  private unsets = new Map<string, Array<[string, unknown]>>();

  constructor(private doc: Node) {}

  private deref(node: Node | undefined): Node | undefined {
    let n = node;
    for (let i = 0; n && typeof n.$ref === 'string' && i < 32; i++) {
      n = n.$ref
        .replace(/^#\//, '')
        .split('/')
        .reduce((o: Node | undefined, k: string) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], this.doc);
    }
    return n;
  }

  private resolve(node: Node | undefined): Resolved | undefined {
    if (!node || typeof node !== 'object') return undefined;
    // Cached by the node as written (often a `$ref`) and by its target, so a walk never follows a reference twice.
    let r = this.resolved.get(node);
    if (r) return r;
    const n = this.deref(node);
    if (!n || typeof n !== 'object') return undefined;
    r = this.resolved.get(n);
    if (r) {
      this.resolved.set(node, r);
      return r;
    }
    r = {
      types: new Set<string>([].concat(n.type ?? [])),
      cls: n['x-zstack-class'],
      subclasses: n['x-zstack-subclasses'],
      properties: { ...(n.properties ?? {}) },
    };
    if (n.items && typeof n.items === 'object') r.items = n.items;
    if (n.additionalProperties && typeof n.additionalProperties === 'object') r.map = n.additionalProperties;
    // Set before the members are read, so a schema that refers to itself ends.
    this.resolved.set(n, r);
    for (const part of [...(n.allOf ?? [])]) {
      const p = this.resolve(part);
      if (!p) continue;
      r.properties = { ...p.properties, ...r.properties };
      r.items ??= p.items;
      r.map ??= p.map;
      r.cls ??= p.cls;
      for (const type of p.types) r.types.add(type);
    }
    for (const part of [...(n.anyOf ?? []), ...(n.oneOf ?? [])]) for (const type of this.resolve(part)?.types ?? []) r.types.add(type);
    this.resolved.set(node, r);
    return r;
  }

  /**
   * 1.1's clients send every scalar as a string (`"cpuNum": "1"`, `"system": "false"`) and 1.1's Gson converted them
   * by the field's type: strings become numbers or booleans where the schema at `node` wants one (lists and maps
   * element-wise). Anything else is left for validation to judge.
   */
  coerce(node: Node | undefined, value: unknown, depth = 0): unknown {
    const r = this.resolve(node);
    if (!r || depth > 32) return value;
    if (typeof value === 'string') {
      const text = value.trim();
      if ((r.types.has('integer') || r.types.has('number')) && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
      if (r.types.has('boolean') && /^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
      return value;
    }
    if (Array.isArray(value)) return r.items ? value.map((v) => this.coerce(r.items, v, depth + 1)) : value;
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const child = r.properties[k] ?? r.map;
        out[k] = child ? this.coerce(child, v, depth + 1) : v;
      }
      return out;
    }
    return value;
  }

  /**
   * Upstream's `schema` map of a reply: the JSON path of every inventory in it → its Java class, children before
   * their parent (`inventories[0].vmNics[0]`, then `inventories[0]`). `pointer` is the reply's schema in the spec.
   */
  classSchema(pointer: string, reply: Record<string, unknown>): Record<string, string> {
    const out: Record<string, string> = {};
    this.walk(reply, { $ref: pointer }, '', out);
    return out;
  }

  private walk(value: unknown, node: Node | undefined, path: string, out: Record<string, string>): void {
    if (!value || typeof value !== 'object') return;
    const r = this.resolve(node);
    if (!r) return;
    if (Array.isArray(value)) {
      if (r.items && !this.scalar(r.items)) for (let i = 0; i < value.length; i++) this.walk(value[i], r.items, `${path}[${i}]`, out);
      return;
    }
    const obj = value as Record<string, unknown>;
    // A page of 100 VMs has ~4,000 values: only those that can hold an inventory are visited (no path is built for
    // a scalar), in the object's own key order (the order of the map's entries).
    const containers = (r.containers ??= new Map(Object.entries(r.properties).filter(([, child]) => !this.scalar(child))));
    if (r.mapContainer === undefined) r.mapContainer = r.map && !this.scalar(r.map) ? r.map : null;
    for (const key in obj) {
      if (key === 'schema' && !path) continue;
      const v = obj[key];
      if (!v || typeof v !== 'object') continue;
      const child = Object.hasOwn(r.properties, key) ? containers.get(key) : r.mapContainer;
      if (child) this.walk(v, child, path ? `${path}.${key}` : key, out);
    }
    if (r.cls && path) {
      const sub = r.subclasses && obj[r.subclasses.property];
      out[path] = (typeof sub === 'string' && r.subclasses!.classes[sub]) || r.cls;
    }
  }

  /** A schema node whose values are all scalars (declared types only, none of them object or array). */
  private scalar(node: Node): boolean {
    const r = this.resolve(node);
    if (!r) return false;
    if (r.scalar === undefined) {
      r.scalar = r.types.size > 0 && !r.items && !r.map && !r.cls && Object.keys(r.properties).length === 0 && [...r.types].every((t) => SCALAR_TYPES.has(t));
    }
    return r.scalar;
  }

  /**
   * Values that mean "not given", removed before validation: `null` (Gson leaves the field unset, as if absent), at
   * the body's top level and among the fields; and a property's `x-zstack-unset` value: upstream's SDKs send
   * primitive defaults such as `diskSize: 0` beside a `diskOfferingUuid`, which upstream ignores.
   */
  dropUnset(op: SpecOperation, body: Record<string, unknown>): void {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return;
    for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
    const inner = op.x.bodyKey ? body[op.x.bodyKey] : undefined;
    if (!inner || typeof inner !== 'object' || Array.isArray(inner)) return;
    for (const [key, value] of Object.entries(inner)) if (value === null) delete (inner as Record<string, unknown>)[key];
    let list = this.unsets.get(op.operationId);
    if (!list) {
      list = [];
      const body = this.resolve({ $ref: `${op.pointer}/requestBody/content/application~1json/schema` });
      const fields = op.x.bodyKey ? this.deref(body?.properties[op.x.bodyKey]) : undefined;
      for (const [name, prop] of Object.entries<Node>(fields?.properties ?? {})) {
        const unset = prop['x-zstack-unset'] ?? this.deref(prop)?.['x-zstack-unset'];
        if (unset !== undefined) list.push([name, unset]);
      }
      this.unsets.set(op.operationId, list);
    }
    const fields = inner as Record<string, unknown>;
    for (const [name, unset] of list) if (fields[name] === unset) delete fields[name];
  }
}
