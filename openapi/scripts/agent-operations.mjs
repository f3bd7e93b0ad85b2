// Renders openapi/generated/agent-operations.ts from openapi/agents/protocol.yaml: one entry per agent command,
// path → {operationId, target, request, response}, the types being the spec's named schemas (as generated into
// agent-protocol.ts). The management server's agent client takes its path and body types from this map, so an
// agent call whose path or body the spec does not know fails typecheck.

/** The schema name a `$ref` (or a requestBody/response wrapping one) ends at. */
function schemaNameOf(doc, node, where) {
  let cur = node;
  for (let hops = 0; hops < 5 && cur; hops++) {
    if (cur.$ref) {
      const parts = cur.$ref.replace(/^#\//, '').split('/');
      if (parts[0] === 'components' && parts[1] === 'schemas') return parts[2];
      cur = parts.reduce((o, k) => o?.[k], doc);
      continue;
    }
    const schema = cur.content?.['application/json']?.schema;
    if (schema) {
      cur = schema;
      continue;
    }
    break;
  }
  throw new Error(`agent protocol: ${where} has no named JSON schema (name it under components.schemas)`);
}

export function renderAgentOperations(doc) {
  const rows = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const op = item.post;
    if (!op) throw new Error(`agent protocol: ${path} has no POST operation`);
    const request = op.requestBody ? schemaNameOf(doc, op.requestBody, `${path} requestBody`) : 'EmptyCmd';
    const response = schemaNameOf(doc, op.responses?.['200'], `${path} 200 response`);
    rows.push({ path, operationId: op.operationId, target: op['x-zstack-target'], request, response });
  }
  rows.sort((a, b) => a.path.localeCompare(b.path));
  const entries = rows.map(
    (r) =>
      `  ${JSON.stringify(r.path)}: {\n    operationId: ${JSON.stringify(r.operationId)};\n    target: ${JSON.stringify(r.target)};\n` +
      `    request: Schemas[${JSON.stringify(r.request)}];\n    response: Schemas[${JSON.stringify(r.response)}];\n  };\n`,
  );
  return (
    "import type { components } from './agent-protocol.js';\n\n" +
    "type Schemas = components['schemas'];\n\n" +
    '/** Every agent command: its path → operationId, target kind (`x-zstack-target`), request body and 200 reply. */\n' +
    'export interface AgentOperations {\n' +
    entries.join('') +
    '}\n\n' +
    '/** Every agent command path, in the order of AgentOperations. */\n' +
    `export const agentPaths = [\n${rows.map((r) => `  ${JSON.stringify(r.path)},\n`).join('')}] as const satisfies readonly (keyof AgentOperations)[];\n`
  );
}
