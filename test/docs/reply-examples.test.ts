// The API reference's response examples are real replies recorded from a test server (test/docs/record-replies.ts):
// each is in the bundled spec as its operation's 200 example and still validates against the reply schema, so a
// change of an inventory that the recorded replies no longer match fails here (record them again).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listOperations, loadSpec } from '../../server/src/core/spec.js';
import { SpecValidator } from '../../server/src/core/validation.js';

const doc = loadSpec();
const recorded = JSON.parse(readFileSync(join(import.meta.dirname, '../../openapi/examples/replies.json'), 'utf8')) as Record<string, unknown>;
const validator = SpecValidator.of(doc);
const byId = new Map<string, { pointer: string }>(listOperations(doc).map((op) => [op.operationId, op]));

t.ok(Object.keys(recorded).length >= 50, `${Object.keys(recorded).length} operations have a recorded reply`);
for (const [operationId, reply] of Object.entries(recorded)) {
  const op = byId.get(operationId);
  t.ok(op, `${operationId} is an operation of the spec`);
  if (!op) continue;
  const pointer = `${op.pointer}/responses/200/content/application~1json`;
  const content = pointer
    .slice(2)
    .split('/')
    .reduce((node: any, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  t.same(content?.example, reply, `${operationId}: the recorded reply is its 200 example`);
  const validate = validator.compile(`${operationId}/example`, SpecValidator.ref(`${pointer}/schema`));
  t.ok(validate(reply), `${operationId}: the example validates (${JSON.stringify(validate.errors?.slice(0, 2))})`);
}
