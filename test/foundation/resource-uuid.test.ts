// The shared create path refuses a `resourceUuid` naming an existing resource of the kind being created (one check,
// in core/create.ts via the ownership wrapper of every `x-zstack.create` operation): SYS.1007, one message, before
// any work, for creates that used to check it themselves (zone, L2) and for those that did not (cluster, offering).
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { ZStackError } from '../../sdk/src/index.js';
import { newUuid } from '../../server/src/core/ids.js';

t.test('resourceUuid already used', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const refused = async (p: Promise<unknown>, uuid: string, what: string) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    t.ok(e instanceof ZStackError, `${what}: refused`);
    if (!(e instanceof ZStackError)) return;
    t.equal(e.code, 'SYS.1007', `${what}: SYS.1007`);
    t.equal(e.details, `resourceUuid[${uuid}] is already used`, `${what}: the one message`);
  };

  const zoneUuid = newUuid();
  const { inventory: zone } = await zs.createZone({ name: 'z', resourceUuid: zoneUuid });
  t.equal(zone.uuid, zoneUuid, 'the chosen uuid is used');
  await refused(zs.createZone({ name: 'z2', resourceUuid: zoneUuid }), zoneUuid, 'CreateZone');

  const clusterUuid = newUuid();
  await zs.createCluster({ zoneUuid, name: 'c', hypervisorType: 'Simulator', resourceUuid: clusterUuid });
  await refused(zs.createCluster({ zoneUuid, name: 'c2', hypervisorType: 'Simulator', resourceUuid: clusterUuid }), clusterUuid, 'CreateCluster');

  const l2Uuid = newUuid();
  await zs.createL2NoVlanNetwork({ zoneUuid, name: 'l2', physicalInterface: 'eth0', resourceUuid: l2Uuid });
  await refused(zs.createL2NoVlanNetwork({ zoneUuid, name: 'l2b', physicalInterface: 'eth1', resourceUuid: l2Uuid }), l2Uuid, 'CreateL2NoVlanNetwork');

  const offeringUuid = newUuid();
  await zs.createInstanceOffering({ name: 'io', cpuNum: 1, memorySize: 2 ** 30, resourceUuid: offeringUuid });
  await refused(zs.createInstanceOffering({ name: 'io2', cpuNum: 1, memorySize: 2 ** 30, resourceUuid: offeringUuid }), offeringUuid, 'CreateInstanceOffering');

  // Another kind's uuid is not "used" for this kind (each kind is its own table, as upstream's VOs).
  const { inventory: other } = await zs.createZone({ name: 'z3', resourceUuid: clusterUuid }).then(
    (r) => r,
    () => ({ inventory: undefined }),
  );
  t.equal(other?.uuid, clusterUuid, "a cluster's uuid is free for a zone");
});
