// Query descriptors against the drizzle schema: every expansion and alias a descriptor has, derived
// (core/inventory-schema.ts) or written by hand, must agree with the foreign keys the schema states — a many-to-one
// expansion leads to the inventory of the table its key references, a one-to-many one goes through a key that points
// back at the descriptor's table, and an alias goes through expansions that exist — so the derived and the
// hand-written expansions cannot drift apart. The check is run on broken descriptors too, to show it can fail.
import t from 'tap';
import type { PgTable } from 'drizzle-orm/pg-core';
import { startServer } from '../lib/harness.js';
import { foreignKeyExpands, foreignKeysOf, isLinkTable, linkExpands } from '../../server/src/core/inventory-schema.js';
import type { InventoryDescriptor } from '../../server/src/core/query.js';
import { loadSpec } from '../../server/src/core/spec.js';

interface SchemaLike {
  $ref?: string;
  allOf?: SchemaLike[];
  properties?: Record<string, SchemaLike>;
  'x-zstack-queryable'?: boolean;
}

const descriptorsOf = (app: unknown) => [...(app as { query: { descriptors: Map<string, InventoryDescriptor> } }).query.descriptors.values()];

/** Where `descriptors` disagree with the schema's foreign keys, and how much of them the check covered. */
function schemaMismatches(descriptors: InventoryDescriptor[]) {
  const byName = new Map(descriptors.map((d) => [d.name, d]));
  const byTable = new Map<PgTable, string[]>();
  for (const d of descriptors) byTable.set(d.table, [...(byTable.get(d.table) ?? []), d.name]);
  const wrong: string[] = [];
  const seen = { manyToOne: 0, oneToMany: 0, links: 0, aliases: 0 };
  for (const d of descriptors) {
    // Many-to-one: the expansion by a foreign key leads to an inventory of the referenced table (a table several
    // inventories describe, e.g. VM instances and appliance VMs, may lead to any of them).
    const candidates = new Map<string, string[]>();
    const derived = foreignKeyExpands(d.table, (table) => {
      const names = byTable.get(table);
      if (names) candidates.set(names[0], names);
      return names?.[0];
    });
    for (const [name, e] of Object.entries(derived)) {
      const hand = Object.values(d.expand ?? {}).find((x) => x.localKey === e.localKey && x.remoteKey === 'uuid');
      if (!hand) continue; // the schema knows a link the descriptor does not expand (yet)
      seen.manyToOne++;
      if (!candidates.get(e.inventory)!.includes(hand.inventory)) wrong.push(`${d.name}.${name}: ${hand.inventory} by ${e.localKey}, not ${e.inventory}`);
    }
    for (const [name, e] of Object.entries(d.expand ?? {})) {
      const target = byName.get(e.inventory);
      if (!target) {
        wrong.push(`${d.name}.${name}: no inventory ${e.inventory}`);
        continue;
      }
      // One-to-many: a foreign key on the remote column points back at this descriptor's table.
      if (e.localKey !== 'uuid') continue;
      const key = foreignKeysOf(target.table).find((k) => k.localKey === e.remoteKey);
      if (key) {
        seen.oneToMany++;
        if (key.foreignTable !== d.table) wrong.push(`${d.name}.${name}: ${e.inventory}.${e.remoteKey} references another table`);
      }
      // Into a link table: the link's expansion and its alias are what the link's keys derive.
      if (isLinkTable(target.table)) {
        seen.links++;
        let link: ReturnType<typeof linkExpands>;
        try {
          link = linkExpands(d.table, [target.table], (table) => byTable.get(table)?.[0]);
        } catch (err) {
          wrong.push(`${d.name}.${name}: ${(err as Error).message}`);
          continue;
        }
        const [[derivedName, derivedExpansion]] = Object.entries(link.expand);
        if (JSON.stringify(e) !== JSON.stringify(derivedExpansion)) wrong.push(`${d.name}.${name}: not the link ${derivedName} the schema derives`);
        // An alias named as the link's other end goes to it through this link.
        for (const alias of Object.keys(link.aliases)) {
          const [head, tail] = d.aliases?.[alias]?.split('.') ?? [];
          if (head !== undefined && (tail !== alias || d.expand?.[head]?.inventory !== e.inventory))
            wrong.push(`${d.name} alias ${alias}: ${d.aliases![alias]}, not through the link's ${alias}`);
        }
      }
    }
    // Aliases: every step is an expansion of the inventory reached so far.
    for (const [alias, path] of Object.entries(d.aliases ?? {})) {
      seen.aliases++;
      let at: InventoryDescriptor | undefined = d;
      for (const step of path.split('.')) at = at && byName.get(at.expand?.[step]?.inventory ?? '');
      if (!at) wrong.push(`${d.name} alias ${alias}: ${path} leads nowhere`);
    }
  }
  return { wrong, seen };
}

t.test('every expansion and alias agrees with the schema', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const descriptors = descriptorsOf(s.app);
  t.ok(descriptors.length > 20, `${descriptors.length} descriptors registered`);
  const { wrong, seen } = schemaMismatches(descriptors);
  t.same(wrong, [], 'no expansion or alias contradicts the foreign keys');
  t.ok(seen.manyToOne > 45 && seen.oneToMany > 30 && seen.links > 20 && seen.aliases > 20, `checked: ${JSON.stringify(seen)}`);

  // The check can fail: the same descriptors, each broken in one way.
  const broken = (name: string, change: (d: InventoryDescriptor) => InventoryDescriptor) =>
    schemaMismatches(descriptors.map((d) => (d.name === name ? change(d) : d))).wrong;
  const expand = (d: InventoryDescriptor, more: InventoryDescriptor['expand']) => ({ ...d, expand: { ...d.expand, ...more } });
  t.same(
    broken('HostInventory', (d) => expand(d, { zone: { inventory: 'ClusterInventory', localKey: 'zoneUuid', remoteKey: 'uuid' } })),
    ['HostInventory.zone: ClusterInventory by zoneUuid, not ZoneInventory'],
    'a many-to-one expansion to the wrong inventory',
  );
  t.same(
    broken('ClusterInventory', (d) => expand(d, { host: { inventory: 'HostInventory', localKey: 'uuid', remoteKey: 'zoneUuid' } })),
    ['ClusterInventory.host: HostInventory.zoneUuid references another table'],
    'a one-to-many expansion by a key onto another table',
  );
  t.same(
    broken('ClusterInventory', (d) => expand(d, { l2NetworkRef: { inventory: 'L2NetworkClusterRefInventory', localKey: 'uuid', remoteKey: 'l2NetworkUuid' } })),
    [
      'ClusterInventory.l2NetworkRef: L2NetworkClusterRefInventory.l2NetworkUuid references another table',
      'ClusterInventory.l2NetworkRef: not the link l2NetworkRef the schema derives',
    ],
    'a link by the wrong key',
  );
  t.same(
    broken('SecurityGroupInventory', (d) => ({ ...d, aliases: { ...d.aliases, vmNic: 'l3NetworkRef.l3Network' } })),
    ["SecurityGroupInventory alias vmNic: l3NetworkRef.l3Network, not through the link's vmNic"],
    'an alias through the wrong link',
  );
  t.same(
    broken('PrimaryStorageInventory', (d) => ({ ...d, aliases: { ...d.aliases, cluster: 'clusterRef.zone' } })),
    [
      "PrimaryStorageInventory alias cluster: clusterRef.zone, not through the link's cluster",
      'PrimaryStorageInventory alias cluster: clusterRef.zone leads nowhere',
    ],
    'an alias to nowhere',
  );
  t.same(
    broken('VipInventory', (d) => expand(d, { peer: { inventory: 'NoSuchInventory', localKey: 'peerL3NetworkUuid', remoteKey: 'uuid' } })),
    ['VipInventory.peer: no inventory NoSuchInventory'],
    'an expansion to no inventory',
  );
});

t.test("the spec's queryable properties are the descriptors' fields (the CLI completes only what the server takes)", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const descriptors = descriptorsOf(s.app);
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
  for (const d of descriptors) {
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
