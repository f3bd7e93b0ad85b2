// Query descriptors against the drizzle schema: every many-to-one expansion a descriptor writes by hand that the
// schema also states as a foreign key must be what core/inventory-schema.ts derives from that key (same inventory,
// same keys), so the derived and the hand-written expansions cannot drift apart.
import t from 'tap';
import type { PgTable } from 'drizzle-orm/pg-core';
import { startServer } from '../lib/harness.js';
import { foreignKeyExpands } from '../../server/src/core/inventory-schema.js';
import type { InventoryDescriptor } from '../../server/src/core/query.js';
import { loadSpec } from '../../server/src/core/spec.js';

interface SchemaLike {
  $ref?: string;
  allOf?: SchemaLike[];
  properties?: Record<string, SchemaLike>;
  'x-zstack-queryable'?: boolean;
}

t.test('derived foreign-key expansions equal the hand-written ones', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const descriptors = [...(s.app.query as unknown as { descriptors: Map<string, InventoryDescriptor> }).descriptors.values()];
  t.ok(descriptors.length > 20, `${descriptors.length} descriptors registered`);
  const byTable = new Map<PgTable, string[]>();
  for (const d of descriptors) byTable.set(d.table, [...(byTable.get(d.table) ?? []), d.name]);

  let derived = 0;
  let matched = 0;
  for (const d of descriptors) {
    // A table several inventories describe (e.g. VM instances and appliance VMs): any of them may be the target.
    const candidates = new Map<string, string[]>();
    const auto = foreignKeyExpands(d.table, (table) => {
      const names = byTable.get(table);
      if (!names) return undefined;
      candidates.set(names[0], names);
      return names[0];
    });
    for (const [name, e] of Object.entries(auto)) {
      derived++;
      const hand = Object.values(d.expand ?? {}).find((x) => x.localKey === e.localKey && x.remoteKey === 'uuid');
      if (!hand) continue; // the schema knows a link the descriptor does not expand (yet)
      t.ok(candidates.get(e.inventory)!.includes(hand.inventory), `${d.name}.${name}: ${hand.inventory} by ${e.localKey}`);
      matched++;
    }
  }
  t.ok(matched > 0, `${matched} of ${derived} derived expansions are written by hand too`);
});

t.test("the spec's queryable properties are the descriptors' fields (the CLI completes only what the server takes)", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const descriptors = (s.app.query as unknown as { descriptors: Map<string, InventoryDescriptor> }).descriptors;
  const schemas = loadSpec().components.schemas as Record<string, SchemaLike>;
  // An inventory's properties, its allOf bases' included.
  const propertiesOf = (name: string): Record<string, SchemaLike> => {
    const schema = schemas[name];
    const out: Record<string, SchemaLike> = {};
    for (const part of [schema, ...(schema?.allOf ?? [])]) {
      if (part?.$ref) Object.assign(out, propertiesOf(part.$ref.split('/').pop()!));
      Object.assign(out, part?.properties ?? {});
    }
    return out;
  };
  let checked = 0;
  for (const d of descriptors.values()) {
    if (!schemas[d.name]) continue;
    const served = new Set([...Object.keys(d.fields), ...Object.keys(d.expand ?? {}), ...Object.keys(d.aliases ?? {})]);
    const wrong: string[] = [];
    for (const [name, schema] of Object.entries(propertiesOf(d.name))) {
      const queryable = schema['x-zstack-queryable'] !== false;
      if (queryable !== served.has(name)) wrong.push(`${name} (${queryable ? 'not served' : 'served, but marked x-zstack-queryable: false'})`);
      checked++;
    }
    t.same(wrong, [], `${d.name}: every property queryable exactly when the server takes it`);
  }
  t.ok(checked > 300, `${checked} properties checked`);
});
