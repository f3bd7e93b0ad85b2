// The bundled spec, read once: the list of operations the router serves and the schemas it validates against.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { OperationId } from '@zstack-ts/openapi/helpers';

export interface ZStackExtension {
  kind: 'async' | 'sync' | 'query' | 'poll';
  bodyKey?: string;
  reply?: string;
  query?: string;
  timeout: string;
  public?: boolean;
  byUuid?: boolean;
  create?: boolean;
  delete?: boolean;
  /** Further URL templates the operation is served at (upstream's `optionalPaths`), not in the spec's paths. */
  optionalPaths?: string[];
  /** The 1.1 message class (`x-zstack-message`), the key of a 1.1 RPC request. */
  message?: string;
  /** The reply/event class the 1.1 RPC result is keyed by. */
  replyClass?: string;
  /** A 1.1 legacy read (generated from `x-zstack-legacy-reads`; served by core/legacy-reads.ts). */
  legacy?: { verb: 'get' | 'list' | 'search'; inventory: string; where: string[] };
  /** A read answering these lists (resolved by the generator from enums of the spec; core/spec-values.ts). */
  values?: Record<string, string[]>;
}

/** An operation's `x-zstack-permission` (completed by the generator's conventions; see core/permissions.ts). */
export interface PermissionDef {
  category: string;
  /** `<category>:<operationId>`: what policy statements match. */
  action: string;
  adminOnly: boolean;
  /** Message fields naming resources the caller must own. */
  operate?: string[];
  /** Message fields naming resources the caller must own or have been shared. */
  use?: string[];
  /** Reply inventory fields whose nested resources a creating call's account owns too. */
  owns?: string[];
}

export interface ParameterDef {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Record<string, unknown>;
  /** JSON pointer of the schema inside the bundled document. */
  pointer: string;
}

export interface SpecOperation {
  operationId: OperationId;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** The real URL template (without the `#action` suffix). */
  path: string;
  /** JSON pointer of the operation in the document. */
  pointer: string;
  x: ZStackExtension;
  permission: PermissionDef;
  parameters: ParameterDef[];
  hasBody: boolean;
  bodyRequired: boolean;
  /** Where the operation's secrets are (`x-zstack-secrets`, derived from `x-zstack-secret` marks: core/secrets.ts). */
  secrets: SecretPaths;
}

export interface SecretPaths {
  /** Dotted paths into the request body (`params.password`; `*` = any array item or map value). */
  request: string[];
  /** Names of secret path/query parameters. */
  params: string[];
  /** Dotted paths into the 200 reply. */
  reply: string[];
}

const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

let spec: Record<string, any> | undefined;

/** The bundled spec, read once per process (servers share it, and with it their compiled validators). Read-only. */
export function loadSpec(): Record<string, any> {
  const require = createRequire(import.meta.url);
  return (spec ??= JSON.parse(readFileSync(require.resolve('@zstack-ts/openapi/openapi.json'), 'utf8')));
}

export function listOperations(doc: Record<string, any>): SpecOperation[] {
  const out: SpecOperation[] = [];
  for (const [key, item] of Object.entries<any>(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'delete', 'patch'] as const) {
      const op = item[method];
      if (!op) continue;
      const pointer = `#/paths/${esc(key)}/${method}`;
      const parameters: ParameterDef[] = (op.parameters ?? []).map((p: any, i: number) => {
        if (p.$ref) {
          const name = p.$ref.split('/').pop();
          const def = doc.components.parameters[name];
          return { ...def, pointer: `#/components/parameters/${esc(name)}/schema` };
        }
        return { ...p, pointer: `${pointer}/parameters/${i}/schema` };
      });
      out.push({
        operationId: op.operationId,
        method: method.toUpperCase() as SpecOperation['method'],
        path: key.split('#')[0],
        pointer,
        x: op['x-zstack'],
        permission: op['x-zstack-permission'],
        parameters,
        hasBody: Boolean(op.requestBody),
        bodyRequired: Boolean(op.requestBody?.required),
        secrets: op['x-zstack-secrets'] ?? { request: [], params: [], reply: [] },
      });
    }
  }
  return out;
}
