// The identity model of ZStack 1.1 end to end: ownership (a Normal account sees and touches only what it owns or
// was shared), sharing, users, groups and policies (deny wins), quotas under concurrency, DeleteAccount with what
// the account owns, CheckApiPermission.
import t from 'tap';
import { createHash } from 'node:crypto';
import { startServer, http } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { ZStackClient, type ZStackError } from '../../sdk/src/index.js';

const sha512 = (s: string) => createHash('sha512').update(s).digest('hex');
const fails = async (p: Promise<unknown>) =>
  (await p.then(
    () => undefined,
    (e) => e,
  )) as ZStackError | undefined;

t.test('identity model', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const admin = s.client;
  const w = await buildWorld(admin, { virtualRouter: false, startIp: '192.168.201.10', endIp: '192.168.201.250', hostCpu: 64, hostMemory: 64 * 2 ** 30 });
  const adminVm = (
    await admin.createVmInstance({ name: 'admin-vm', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] })
  ).inventory;

  const newAccount = async (name: string) => {
    const acct = (await admin.createAccount({ name, password: sha512('pw') })).inventory;
    const client = new ZStackClient({ endpoint: s.url, accountName: name, password: 'pw', pollIntervalMs: 20 });
    await client.login();
    return { acct, client };
  };
  const alice = await newAccount('alice');
  const eve = await newAccount('eve');

  t.test('a Normal account sees nothing of admin and may not touch it', async (t) => {
    t.same((await alice.client.queryVmInstance({})).inventories, [], 'no VM of admin');
    t.same((await alice.client.queryImage({})).inventories, [], 'no image of admin (not shared)');
    t.same((await alice.client.queryL3Network({})).inventories, []);
    t.equal((await alice.client.queryZone({})).inventories!.length, 1, 'zones are readable by all');
    t.same(
      (await alice.client.queryAccount({})).inventories!.map((a) => a.name),
      ['alice'],
      'only its own account',
    );
    for (const [name, call] of [
      ['StopVmInstance', () => alice.client.stopVmInstance({ uuid: adminVm.uuid })],
      ['DestroyVmInstance', () => alice.client.destroyVmInstance({ uuid: adminVm.uuid })],
      ['DeleteZone', () => alice.client.deleteZone({ uuid: w.zoneUuid })],
      ['DeleteHost', () => alice.client.deleteHost({ uuid: w.hostUuids[0] })],
      ['QueryHost', () => alice.client.queryHost({})],
      [
        'AddSimulatorHost',
        () => alice.client.addSimulatorHost({ name: 'h', managementIp: '10.0.0.9', clusterUuid: w.clusterUuid, cpuCapacity: 8, memoryCapacity: 2 ** 30 }),
      ],
      [
        'CreateVmInstance',
        () =>
          alice.client.createVmInstance({ name: 'x', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] }),
      ],
    ] as const) {
      const e = await fails(call());
      t.equal(e?.httpStatus, 403, `${name} → 403`);
      t.equal(e?.code, 'ID.1002');
    }
    const vm = (await admin.queryVmInstance({ q: [`uuid=${adminVm.uuid}`] })).inventories![0];
    t.equal(vm.state, 'Running', "admin's VM untouched");
  });

  let aliceVm = '';
  t.test('sharing: shared resources can be used, not changed; the creator owns what it creates', async (t) => {
    await admin.shareResource({ resourceUuids: [w.imageUuid, w.instanceOfferingUuid], toPublic: true });
    await admin.shareResource({ resourceUuids: [w.l3NetworkUuid], accountUuids: [alice.acct.uuid] });
    t.equal((await alice.client.queryImage({})).inventories!.length, 1, 'the public image is seen');
    t.equal((await eve.client.queryL3Network({})).inventories!.length, 0, 'the L3 is shared with alice only');
    const e = await fails(alice.client.deleteImage({ uuid: w.imageUuid }));
    t.equal(e?.httpStatus, 403, 'a shared image cannot be deleted by a receiver');
    const vm = (
      await alice.client.createVmInstance({
        name: 'alice-vm',
        instanceOfferingUuid: w.instanceOfferingUuid,
        imageUuid: w.imageUuid,
        l3NetworkUuids: [w.l3NetworkUuid],
      })
    ).inventory;
    aliceVm = vm.uuid;
    t.same(
      (await alice.client.queryVmInstance({})).inventories!.map((v) => v.uuid),
      [vm.uuid],
      'alice sees her VM',
    );
    t.equal((await alice.client.queryVolume({})).inventories!.length, 1, 'and its root volume');
    t.equal((await alice.client.queryVmNic({})).inventories!.length, 1, 'and its NIC');
    const refs = (await alice.client.queryAccountResourceRef({})).inventories!;
    t.ok(refs.some((r) => r.resourceUuid === vm.uuid && r.resourceType === 'VmInstanceVO' && r.accountUuid === alice.acct.uuid));
    t.same((await eve.client.queryVmInstance({})).inventories, [], 'eve does not see it');
    t.equal((await fails(eve.client.stopVmInstance({ uuid: vm.uuid })))?.httpStatus, 403, 'eve may not stop it');
    t.equal((await alice.client.stopVmInstance({ uuid: vm.uuid })).inventory.state, 'Stopped', 'alice may');
    t.equal((await admin.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories!.length, 1, 'admin sees everything');
    // A NIC an admin adds to alice's VM is alice's (nested resources go to the owner of what they belong to).
    const l3b = (await admin.createL3Network({ name: 'l3b', l2NetworkUuid: w.l2NetworkUuid })).inventory;
    await admin.addIpRange({ l3NetworkUuid: l3b.uuid, name: 'r', startIp: '10.9.0.10', endIp: '10.9.0.20', netmask: '255.255.255.0', gateway: '10.9.0.1' });
    const withNic = (await admin.attachL3NetworkToVm({ vmInstanceUuid: vm.uuid, l3NetworkUuid: l3b.uuid })).inventory;
    const nic = withNic.vmNics.find((n) => n.uuid !== vm.vmNics[0].uuid)!;
    const nicRef = (await admin.queryAccountResourceRef({ q: [`resourceUuid=${nic.uuid}`] })).inventories![0];
    t.match(nicRef, { accountUuid: alice.acct.uuid, resourceType: 'VmNicVO' });
    await alice.client.detachL3NetworkFromVm({ vmNicUuid: nic.uuid });
    t.equal((await alice.client.queryVmNic({})).inventories!.length, 1, 'alice detached it');
    t.ok((await admin.querySharedResource({ q: [`resourceUuid=${w.imageUuid}`] })).inventories![0].toPublic);
    await admin.revokeResourceSharing({ resourceUuids: [w.l3NetworkUuid], all: true });
    t.equal((await alice.client.queryL3Network({})).inventories!.length, 0, 'revoked');
    const again = await fails(
      alice.client.createVmInstance({ name: 'y', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] }),
    );
    t.equal(again?.httpStatus, 403, 'an unshared L3 cannot be used');
    await admin.shareResource({ resourceUuids: [w.l3NetworkUuid], toPublic: true });
  });

  t.test('users, groups and policies: deny wins, group policies count', async (t) => {
    const bob = (await alice.client.createUser({ name: 'bob', password: sha512('bobpw') })).inventory;
    t.equal(bob.accountUuid, alice.acct.uuid);
    const login = await http(s.url, 'PUT', '/zstack/v1/accounts/users/login', {
      body: { logInByUser: { accountName: 'alice', userName: 'bob', password: sha512('bobpw') } },
    });
    t.equal(login.status, 200);
    t.equal(login.json.inventory.userType, 'UserVO');
    const wrong = await http(s.url, 'PUT', '/zstack/v1/accounts/users/login', {
      body: { logInByUser: { accountName: 'alice', userName: 'bob', password: sha512('x') } },
    });
    t.equal(wrong.status, 401);
    const asBob = new ZStackClient({ endpoint: s.url, sessionUuid: login.json.inventory.uuid, pollIntervalMs: 20 });
    t.equal((await fails(asBob.queryVmInstance({})))?.httpStatus, 403, 'no policy: nothing allowed');

    const readers = (await alice.client.createPolicy({ name: 'vm-all', statements: [{ effect: 'Allow', actions: ['vm:*'] }] })).inventory;
    const noDestroy = (await alice.client.createPolicy({ name: 'no-destroy', statements: [{ effect: 'Deny', actions: ['vm:DestroyVmInstance'] }] })).inventory;
    await alice.client.attachPolicyToUser({ userUuid: bob.uuid, policyUuid: readers.uuid });
    t.same(
      (await asBob.queryVmInstance({})).inventories!.map((v) => v.uuid),
      [aliceVm],
      "bob sees his account's VMs",
    );
    t.equal((await fails(asBob.queryZone({})))?.httpStatus, 403, 'zone:QueryZone is not allowed');
    const group = (await alice.client.createUserGroup({ name: 'ops' })).inventory;
    await alice.client.addUserToGroup({ groupUuid: group.uuid, userUuid: bob.uuid });
    t.equal((await alice.client.updateUserGroup({ uuid: group.uuid, description: 'operators' })).inventory.description, 'operators');
    t.equal((await fails(eve.client.updateUserGroup({ uuid: group.uuid, name: 'mine' })))?.httpStatus, 403, "eve may not rename alice's group");
    await alice.client.attachPolicyToUserGroup({ groupUuid: group.uuid, policyUuid: noDestroy.uuid });
    const denied = await fails(asBob.destroyVmInstance({ uuid: aliceVm }));
    t.equal(denied?.httpStatus, 403, "the group's Deny wins over the user's Allow");
    const check = await alice.client.checkApiPermission({ userUuid: bob.uuid, apiNames: ['StartVmInstance', 'DestroyVmInstance', 'CreateZone'] });
    t.same(check.inventory, { StartVmInstance: 'Allow', DestroyVmInstance: 'Deny', CreateZone: 'Deny' });
    t.same((await admin.checkApiPermission({ apiNames: ['CreateZone'] })).inventory, { CreateZone: 'Allow' });
    await alice.client.detachPolicyFromUserGroup({ groupUuid: group.uuid, policyUuid: noDestroy.uuid });
    t.same((await alice.client.checkApiPermission({ userUuid: bob.uuid, apiNames: ['DestroyVmInstance'] })).inventory, { DestroyVmInstance: 'Allow' });
    await alice.client.removeUserFromGroup({ groupUuid: group.uuid, userUuid: bob.uuid });
    await alice.client.detachPolicyFromUser({ userUuid: bob.uuid, policyUuid: readers.uuid });
    t.same((await alice.client.queryPolicy({})).inventories!.map((p) => p.name).sort(), ['no-destroy', 'vm-all']);
    t.same((await eve.client.queryUser({})).inventories, [], "eve sees no user of alice's");
    t.equal((await fails(eve.client.deleteUser({ uuid: bob.uuid })))?.httpStatus, 403);
    await alice.client.updateUser({ uuid: bob.uuid, description: 'operator' });
    t.equal((await alice.client.queryUser({})).inventories![0].description, 'operator');
    await alice.client.deletePolicy({ uuid: noDestroy.uuid });
    await alice.client.deleteUserGroup({ uuid: group.uuid });
    await alice.client.deleteUser({ uuid: bob.uuid });
    t.equal(
      (await http(s.url, 'GET', '/zstack/v1/zones', { headers: { Authorization: `OAuth ${login.json.inventory.uuid}` } })).status,
      401,
      "a deleted user's session ends",
    );
  });

  t.test('quotas: 50 concurrent creations against vm.num = 10 → exactly 10', async (t) => {
    const q = await newAccount('quota-user');
    const quotas = (await admin.queryQuota({ q: [`identityUuid=${q.acct.uuid}`] })).inventories!;
    t.ok(
      quotas.some((x) => x.name === 'vm.num' && x.value === 20),
      'default quotas are listed',
    );
    t.equal((await fails(q.client.updateQuota({ identityUuid: q.acct.uuid, name: 'vm.num', value: 100 })))?.httpStatus, 403, 'only admin changes quotas');
    await admin.updateQuota({ identityUuid: q.acct.uuid, name: 'vm.num', value: 10 });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        q.client.createVmInstance({ name: `q${i}`, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const codes = new Set(results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as ZStackError).code] : [])));
    t.equal(ok, 10, 'exactly 10 created');
    t.same([...codes], ['ID.1003'], 'the others fail with quota exceeding');
    t.equal((await q.client.queryVmInstance({ count: true })).total, 10);
    const usage = (await q.client.getAccountQuotaUsage({ uuid: q.acct.uuid })).usages;
    t.match(
      usage.find((u) => u.name === 'vm.num'),
      { total: 10, used: 10 },
    );
    t.match(
      usage.find((u) => u.name === 'vm.memorySize'),
      { used: 10 * 128 * 2 ** 20 },
    );
    t.equal((await fails(eve.client.getAccountQuotaUsage({ uuid: q.acct.uuid })))?.httpStatus, 403, "another account's usage is not shown");

    // DeleteAccount takes what the account owns with it.
    const vmUuids = (await admin.queryVmInstance({ q: [`name~=q%`] })).inventories!.map((v) => v.uuid);
    await admin.deleteAccount({ uuid: q.acct.uuid });
    t.equal((await admin.queryVmInstance({ q: [`uuid?=${vmUuids.join(',')}`], count: true })).total, 0, 'its VMs are gone');
    t.equal((await admin.queryAccount({ q: [`uuid=${q.acct.uuid}`] })).inventories!.length, 0);
    t.equal((await admin.queryAccountResourceRef({ q: [`accountUuid=${q.acct.uuid}`], count: true })).total, 0);
    t.equal((await fails(admin.deleteAccount({ uuid: '36c27e8ff05c4780bf6d2fa65700f22e' })))?.httpStatus, 400, 'admin cannot be deleted');
  });
});
