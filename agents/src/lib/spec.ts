// Reads openapi/agents/protocol.yaml once: routes are registered from it and bodies are validated by its schemas,
// so the document and the agents cannot drift apart.
import { Ajv, type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { OperationId, TargetKind } from './protocol.js';

export const PROTOCOL_SPEC_URL = new URL('../../../openapi/agents/protocol.yaml', import.meta.url);

/** Id under which the spec's component schemas are registered with fastify's validator. */
export const SHARED_SCHEMA_ID = 'agent-protocol';

export interface OperationSpec {
  operationId: OperationId;
  path: string;
  target: TargetKind;
  /** Body field naming the target when the header is absent (connect commands). */
  targetFromBody?: string;
  /** True when no secret is needed (`security: []`): the echo paths. */
  public: boolean;
  /** JSON schema of the body, as a reference into the shared schema; undefined = no body. */
  bodySchema?: { $ref: string };
  bodyRequired: boolean;
}

export interface Protocol {
  operations: Map<OperationId, OperationSpec>;
  /** The spec's component schemas as one JSON schema (`definitions`), refs rewritten to point inside it. */
  sharedSchema: { $id: string; definitions: Record<string, unknown> };
}

let cached: Protocol | undefined;
let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

/**
 * The body validator of an operation, compiled once per process (agents started in the same process, as tests
 * do, share them).
 */
export function bodyValidator(op: OperationSpec): ValidateFunction | undefined {
  if (!op.bodySchema) return undefined;
  let validate = validators.get(op.bodySchema.$ref);
  if (!validate) {
    ajv ??= new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, strict: true }).addSchema(loadProtocol().sharedSchema);
    validate = ajv.compile(op.bodySchema);
    validators.set(op.bodySchema.$ref, validate);
  }
  return validate;
}

export function loadProtocol(): Protocol {
  if (cached) return cached;
  const doc = parse(readFileSync(PROTOCOL_SPEC_URL, 'utf8')) as SpecDocument;
  const operations = new Map<OperationId, OperationSpec>();
  for (const [path, item] of Object.entries(doc.paths)) {
    const op = item.post;
    if (!op) throw new Error(`protocol.yaml: ${path} has no POST operation`);
    const body = resolveRequestBody(doc, op.requestBody);
    const schemaRef = body?.content?.['application/json']?.schema?.$ref;
    operations.set(op.operationId as OperationId, {
      operationId: op.operationId as OperationId,
      path,
      target: op['x-zstack-target'],
      targetFromBody: op['x-zstack-target-from-body'],
      public: Array.isArray(op.security) && op.security.length === 0,
      bodySchema: schemaRef ? { $ref: `${SHARED_SCHEMA_ID}#/definitions/${schemaName(schemaRef)}` } : undefined,
      bodyRequired: body?.required === true,
    });
  }
  const definitions = rewriteRefs(doc.components.schemas) as Record<string, unknown>;
  cached = { operations, sharedSchema: { $id: SHARED_SCHEMA_ID, definitions } };
  return cached;
}

interface SpecOperation {
  operationId: string;
  security?: unknown[];
  requestBody?: RequestBody | { $ref: string };
  'x-zstack-target': TargetKind;
  'x-zstack-target-from-body'?: string;
}
interface RequestBody {
  required?: boolean;
  content?: Record<string, { schema?: { $ref?: string } }>;
}
interface SpecDocument {
  paths: Record<string, { post?: SpecOperation }>;
  components: { schemas: Record<string, unknown>; requestBodies?: Record<string, RequestBody> };
}

function resolveRequestBody(doc: SpecDocument, body: SpecOperation['requestBody']): RequestBody | undefined {
  if (!body) return undefined;
  if ('$ref' in body) {
    const name = body.$ref.replace('#/components/requestBodies/', '');
    const resolved = doc.components.requestBodies?.[name];
    if (!resolved) throw new Error(`protocol.yaml: unresolved ${body.$ref}`);
    return resolved;
  }
  return body;
}

function schemaName(ref: string): string {
  if (!ref.startsWith('#/components/schemas/')) throw new Error(`protocol.yaml: unsupported $ref ${ref}`);
  return ref.slice('#/components/schemas/'.length);
}

/** `#/components/schemas/X` → `#/definitions/X`, relative to the shared schema. */
function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === '$ref' && typeof v === 'string' ? `#/definitions/${schemaName(v)}` : rewriteRefs(v);
    }
    return out;
  }
  return node;
}
