// Virtual router agent: DHCP/DNS/NIC state per router, in the simulator and in a real (single-router) agent.
import t from 'tap';
import { call, start } from './helpers.js';

const entry = (mac: string, ip: string) => ({
  ip,
  mac,
  netmask: '255.255.255.0',
  gateway: '10.0.0.1',
  hostname: `vm-${ip.replace(/\./g, '-')}`,
  isDefaultL3Network: true,
  dns: ['10.0.0.1'],
});

t.test('simulated virtual routers keep their own DHCP, DNS and NICs', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const vr1 = { target: 'vr1' };
  t.same((await call(agent, '/virtualrouter/ping', {}, vr1)).body, { success: true }, 'not initialised yet');
  t.equal((await call(agent, '/virtualrouter/init', {}, vr1)).body.success, true);
  t.same((await call(agent, '/virtualrouter/ping', {}, vr1)).body, { success: true, uuid: 'vr1' });

  await call(agent, '/virtualrouter/configurenic', { nics: [{ mac: 'fa:01', ip: '10.0.0.1', netmask: '255.255.255.0', isDefaultRoute: false }] }, vr1);
  await call(agent, '/virtualrouter/adddhcp', { dhcpEntries: [entry('fa:10', '10.0.0.10'), entry('fa:11', '10.0.0.11')] }, vr1);
  await call(agent, '/virtualrouter/removedhcp', { dhcpEntries: [entry('fa:10', '10.0.0.10'), entry('fa:99', '10.0.0.99')] }, vr1);
  await call(agent, '/virtualrouter/setdns', { dns: [{ dnsAddress: '8.8.8.8', nicMac: 'fa:01' }, { dnsAddress: '1.1.1.1' }] }, vr1);
  await call(agent, '/virtualrouter/removedns', { dns: [{ dnsAddress: '1.1.1.1' }] }, vr1);
  await call(agent, '/virtualrouter/adddhcp', { dhcpEntries: [entry('fa:20', '10.0.1.20')] }, { target: 'vr2' });

  const state = (await call(agent, '/simulator/virtualrouter/state', { virtualRouterUuid: 'vr1' })).body;
  t.equal(state.initialized, true);
  t.same(
    state.dhcpEntries.map((e: { mac: string }) => e.mac),
    ['fa:11'],
  );
  t.same(state.dns, [{ dnsAddress: '8.8.8.8', nicMac: 'fa:01' }]);
  t.same(
    state.nics.map((n: { ip: string }) => n.ip),
    ['10.0.0.1'],
  );

  await call(agent, '/virtualrouter/adddhcp', { dhcpEntries: [entry('fa:30', '10.0.0.30')], rebuild: true }, vr1);
  const rebuilt = (await call(agent, '/simulator/virtualrouter/state', { virtualRouterUuid: 'vr1' })).body;
  t.same(
    rebuilt.dhcpEntries.map((e: { mac: string }) => e.mac),
    ['fa:30'],
    'rebuild replaces the table',
  );

  const other = (await call(agent, '/simulator/virtualrouter/state', { virtualRouterUuid: 'vr2' })).body;
  t.same([other.initialized, other.dhcpEntries.length], [false, 1]);
  t.equal((await call(agent, '/simulator/virtualrouter/state', { virtualRouterUuid: 'nope' })).body.success, false);

  const bad = await call(agent, '/virtualrouter/adddhcp', { dhcpEntries: [{ ip: '10.0.0.5' }] }, vr1);
  t.equal(bad.status, 400);
  t.match(bad.body.error, /body\/dhcpEntries\/0 must have required property 'mac'/);
});

t.test('a real virtual router agent is one router whatever the header says', async (t) => {
  const agent = await start({ kind: 'virtual-router' });
  t.teardown(() => agent.close());
  await call(agent, '/virtualrouter/init', { uuid: 'vr-real' });
  t.same((await call(agent, '/virtualrouter/ping', {}, { target: 'something-else' })).body, { success: true, uuid: 'vr-real' });
  t.same((await call(agent, '/virtualrouter/adddhcp', { dhcpEntries: [entry('fa:10', '10.0.0.10')] })).body, { success: true });
});
