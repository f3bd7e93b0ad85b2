// VIPs through the SDK: lifecycle and queries, the allocator shared with NICs (requiredIp, strategies, exhaustion),
// 60 concurrent creations on a 12-address range (no address twice, clean refusals), the address given back on
// delete, and the cascade when the L3 network or IP range goes.
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';

async function failure(p: Promise<unknown>): Promise<ZStackError> {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  if (!(e instanceof ZStackError)) throw new Error(`expected a ZStackError, got ${e}`);
  return e;
}

async function publicL3(zs: ZStackClient, startIp: string, endIp: string) {
  const zone = (await zs.createZone({ name: 'z' })).inventory;
  const l2 = (await zs.createL2NoVlanNetwork({ name: 'l2-public', zoneUuid: zone.uuid, physicalInterface: 'eth1' })).inventory;
  const l3 = (await zs.createL3Network({ name: 'public', l2NetworkUuid: l2.uuid, category: 'Public' } as never)).inventory;
  const range = (await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'r', startIp, endIp, netmask: '255.255.255.0', gateway: '172.20.0.1' })).inventory;
  return { zone, l2, l3, range };
}

t.test('VIP lifecycle, allocation and cascade', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const { l3, range } = await publicL3(zs, '172.20.0.10', '172.20.0.21');

  const first = (await zs.createVip({ name: 'v1', description: 'web', l3NetworkUuid: l3.uuid, allocatorStrategy: 'FirstAvailableIpAllocatorStrategy' }))
    .inventory;
  t.match(first, {
    name: 'v1',
    description: 'web',
    l3NetworkUuid: l3.uuid,
    ip: '172.20.0.10',
    state: 'Enabled',
    gateway: '172.20.0.1',
    netmask: '255.255.255.0',
  });
  t.notOk(first.useFor, 'a new VIP serves nothing');
  const required = (await zs.createVip({ name: 'v2', l3NetworkUuid: l3.uuid, requiredIp: '172.20.0.15' })).inventory;
  t.equal(required.ip, '172.20.0.15');

  let e = await failure(zs.createVip({ name: 'dup', l3NetworkUuid: l3.uuid, requiredIp: '172.20.0.15' }));
  t.match([e.code, e.details], ['SYS.1006', /already a vip\[172.20.0.15\]/], 'a required address already a VIP');
  e = await failure(zs.createVip({ name: 'bad', l3NetworkUuid: l3.uuid, requiredIp: '172.20.0.300' }));
  t.match([e.code, e.details], ['SYS.1007', /requiredIp/]);
  e = await failure(zs.createVip({ name: 'out', l3NetworkUuid: l3.uuid, requiredIp: '172.20.0.99' }));
  t.match([e.code, e.details], ['SYS.1007', /not in any IP range/]);
  e = await failure(zs.createVip({ name: 'strategy', l3NetworkUuid: l3.uuid, allocatorStrategy: 'Cheapest' }));
  t.match([e.code, e.details], ['SYS.1007', /unsupported ip allocation strategy\[Cheapest\]/]);
  e = await failure(zs.createVip({ name: 'nol3', l3NetworkUuid: 'a'.repeat(32) }));
  t.equal(e.code, 'SYS.1003');

  const renamed = (await zs.updateVip({ uuid: first.uuid, name: 'v1b', description: 'd' })).inventory;
  t.match(renamed, { name: 'v1b', description: 'd' });
  t.equal((await zs.changeVipState({ uuid: first.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
  t.equal((await zs.changeVipState({ uuid: first.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled');
  t.same(
    (await zs.queryVip({ q: ['ip=172.20.0.15'] })).inventories!.map((v) => v.uuid),
    [required.uuid],
  );
  t.same(
    (await zs.queryVip({ q: [`l3Network.name=public`, 'name=v1b'] })).inventories!.map((v) => v.uuid),
    [first.uuid],
    'expansion l3Network',
  );

  // 60 at once on the 10 addresses left: 10 get distinct addresses, 50 are refused with L3.1000, nothing else.
  const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => zs.createVip({ name: `c${i}`, l3NetworkUuid: l3.uuid })));
  const won = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<any>).value.inventory.ip as string);
  const lost = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
  t.equal(won.length, 10, '10 VIPs for the 10 free addresses');
  t.equal(new Set([...won, first.ip, required.ip]).size, 12, 'no address handed out twice');
  t.ok(
    lost.every((x) => x instanceof ZStackError && x.code === 'L3.1000'),
    'every refusal is L3.1000 (no IP available)',
  );
  t.equal((await zs.queryVip({ q: [`l3NetworkUuid=${l3.uuid}`], count: true } as never)).total, 12);

  // Delete gives the address back: the same address can be required again; unknown uuids succeed.
  await zs.deleteVip({ uuid: required.uuid });
  t.equal((await zs.createVip({ name: 'again', l3NetworkUuid: l3.uuid, requiredIp: '172.20.0.15' })).inventory.ip, '172.20.0.15');
  await zs.deleteVip({ uuid: 'b'.repeat(32) });

  // The IP range goes: its VIPs go with it; then the L3 network can go too.
  await zs.deleteIpRange({ uuid: range.uuid });
  t.equal((await zs.queryVip({ q: [`l3NetworkUuid=${l3.uuid}`], count: true } as never)).total, 0, 'VIPs deleted with their IP range');
  await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'r2', startIp: '172.20.0.30', endIp: '172.20.0.31', netmask: '255.255.255.0', gateway: '172.20.0.1' });
  await zs.createVip({ name: 'last', l3NetworkUuid: l3.uuid });
  await zs.deleteL3Network({ uuid: l3.uuid });
  t.equal((await zs.queryVip({ count: true } as never)).total, 0, 'VIPs deleted with their L3 network');
});
