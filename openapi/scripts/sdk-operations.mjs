// Renders the SDK's operation table and method signatures from the bundled spec.
const METHODS = ['get', 'post', 'put', 'delete', 'patch'];

export const methodName = (operationId) => operationId[0].toLowerCase() + operationId.slice(1);

function resolveParam(doc, p) {
  if (!p.$ref) return p;
  return doc.components.parameters[p.$ref.split('/').pop()];
}

export function listOperations(doc) {
  const ops = [];
  for (const [key, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const z = op['x-zstack'];
      const params = (op.parameters ?? []).map((p) => resolveParam(doc, p));
      ops.push({
        operationId: op.operationId,
        summary: op.summary,
        method: method.toUpperCase(),
        path: key.split('#')[0],
        kind: z.kind,
        bodyKey: z.bodyKey ?? null,
        timeout: z.timeout,
        public: Boolean(z.public),
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
      });
    }
  }
  return ops.sort((a, b) => a.operationId.localeCompare(b.operationId));
}

export function renderSdkOperations(doc) {
  const ops = listOperations(doc).filter((o) => o.kind !== 'poll');
  const table = ops
    .map((o) => {
      const { summary, operationId, ...rest } = o;
      return `  ${operationId}: ${JSON.stringify(rest)},`;
    })
    .join('\n');
  const methods = ops
    .map(
      (o) =>
        `  /** ${o.summary.replace(/\*\//g, '')} (\`${o.method} ${o.path}\`, ${o.kind}, default timeout ${o.timeout}) */\n` +
        `  ${methodName(o.operationId)}(params${o.pathParams.length || hasRequired(doc, o) ? '' : '?'}: ParamsOf<'${o.operationId}'>, options?: CallOptions): Promise<ReplyOf<'${o.operationId}'>>;`,
    )
    .join('\n');
  return `import type { CallOptions, OperationInfo, ParamsOf, ReplyOf } from '../types.js';

/** Every operation of the spec: how to call it. */
export const OPERATIONS = {
${table}
} as const satisfies Record<string, OperationInfo>;

export type OperationId = keyof typeof OPERATIONS;

/** One typed method per operation, named from its operationId. */
export interface GeneratedMethods {
${methods}
}
`;
}

function hasRequired(doc, o) {
  if (!o.bodyKey) return false;
  const item = Object.entries(doc.paths).find(([k]) => k.split('#')[0] === o.path && doc.paths[k][o.method.toLowerCase()]?.operationId === o.operationId)[1];
  const schema = item[o.method.toLowerCase()].requestBody.content['application/json'].schema.properties[o.bodyKey];
  return (schema.required ?? []).length > 0;
}
