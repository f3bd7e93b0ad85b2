// Networks on a real host: names and addresses are checked before any command runs; as root (a veth interface
// stands for the L2's physical interface) L2Vlan bridges, and the Flat DHCP namespace with dnsmasq's static leases.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { FlatDhcpServer, bridgeNameOf, deleteBridge, ensureBridge } from '../src/network/host-network.js';

const sh = promisify(execFile);

t.test('names and addresses are validated first', async (t) => {
  t.equal(bridgeNameOf('eth0'), 'br_eth0');
  t.equal(bridgeNameOf('eth0', 100), 'br_eth0_100');
  t.equal(bridgeNameOf('enp0s31f6.5', 4000), 'br_enp0s31f6_5_');
  await t.rejects(ensureBridge({ bridgeName: 'bad name; rm -rf' }), /invalid bridge name/);
  await t.rejects(ensureBridge({ bridgeName: 'a-very-long-bridge-name' }), /invalid bridge name/);
  await t.rejects(deleteBridge({ bridgeName: '' }), /invalid bridge name/);
  const ok = { l3NetworkUuid: 'l3', bridgeName: 'br0', serverIp: '10.0.0.1', prefixLength: 24 };
  t.throws(() => new FlatDhcpServer({ ...ok, serverIp: '10.0.0.300' }), /invalid DHCP server address/);
  t.throws(() => new FlatDhcpServer({ ...ok, gateway: 'x' }), /invalid gateway/);
  t.throws(() => new FlatDhcpServer({ ...ok, dns: ['1.2.3'] }), /invalid DNS server/);
  t.throws(() => new FlatDhcpServer({ ...ok, prefixLength: 31 }), /invalid prefix length/);
  t.throws(() => new FlatDhcpServer({ ...ok, bridgeName: 'br 0' }), /invalid bridge name/);
  const a = new FlatDhcpServer(ok);
  t.match(a.namespace, /^zsdhcp-[0-9a-f]{8}$/);
  t.equal(new FlatDhcpServer(ok).namespace, a.namespace, 'one namespace per L3 network');
  t.not(new FlatDhcpServer({ ...ok, l3NetworkUuid: 'l3b' }).namespace, a.namespace);
});

const rootReason =
  process.getuid?.() !== 0 ? 'needs root' : !existsSync('/usr/sbin/dnsmasq') ? 'dnsmasq is not installed (apt-get install dnsmasq-base)' : undefined;

t.test('as root: an L2Vlan bridge on a VLAN of a (veth) physical interface, and a Flat DHCP namespace', { skip: rootReason }, async (t) => {
  const tag = randomBytes(3).toString('hex');
  const phys = `zsdm${tag}`;
  const dir = await mkdtemp(join(tmpdir(), 'zstack-net-'));
  const bridgeName = bridgeNameOf(phys);
  const dhcp = new FlatDhcpServer({
    l3NetworkUuid: `l3-${tag}`,
    bridgeName,
    serverIp: '10.199.0.1',
    prefixLength: 24,
    gateway: '10.199.0.1',
    dns: ['10.199.0.1'],
    stateDir: dir,
  });
  t.teardown(async () => {
    await dhcp.destroy().catch(() => undefined);
    await deleteBridge({ bridgeName, physicalInterface: phys }).catch(() => undefined);
    await sh('ip', ['link', 'del', phys]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  await t.rejects(ensureBridge({ bridgeName, physicalInterface: phys }), /physical interface .* does not exist/);
  await sh('ip', ['link', 'add', phys, 'type', 'veth', 'peer', 'name', `zsdp${tag}`]); // no dummy module in containers
  await t.rejects(ensureBridge({ bridgeName, physicalInterface: phys, vlan: 5000 }), /invalid vlan/);
  t.equal(await ensureBridge({ bridgeName, physicalInterface: phys }), bridgeName);
  t.equal(await ensureBridge({ bridgeName, physicalInterface: phys }), bridgeName, 'idempotent');
  t.match((await sh('ip', ['link', 'show', phys])).stdout, new RegExp(`master ${bridgeName}`), 'the physical interface is a port');

  await t.rejects(dhcp.ensure([{ mac: 'nope', ip: '10.199.0.5' }]), /invalid MAC/);
  await dhcp.ensure([{ mac: '52:54:00:AA:BB:01', ip: '10.199.0.10', hostname: 'vm1' }]);
  await dhcp.ensure([{ mac: '52:54:00:AA:BB:01', ip: '10.199.0.10', hostname: 'vm1' }]); // again: kept, reloaded
  t.same(await dhcp.leases(), [{ mac: '52:54:00:aa:bb:01', ip: '10.199.0.10', hostname: 'vm1' }]);
  const addr = (await sh('ip', ['-n', dhcp.namespace, '-o', 'addr'])).stdout;
  t.match(addr, /10\.199\.0\.1\/24/, 'the server address lives in the namespace only');
  t.notMatch((await sh('ip', ['-o', 'addr'])).stdout, /10\.199\.0\.1\//, 'not on the host');
  const pid = (await readFile(join(dir, dhcp.id, 'dnsmasq.pid'), 'utf8')).trim();
  t.ok(existsSync(`/proc/${pid}`), 'dnsmasq runs');
  await dhcp.setLeases([{ mac: '52:54:00:aa:bb:02', ip: '10.199.0.11' }]);
  t.match(await readFile(dhcp.hostsFile, 'utf8'), /^52:54:00:aa:bb:02,10\.199\.0\.11\n$/);
  await dhcp.destroy();
  t.notMatch((await sh('ip', ['netns', 'list'])).stdout, new RegExp(dhcp.namespace), 'namespace gone');
  await deleteBridge({ bridgeName, physicalInterface: phys });
  await t.rejects(sh('ip', ['link', 'show', bridgeName]), /does not exist/);
});

async function vlanUnsupported(): Promise<string | undefined> {
  if (rootReason) return rootReason;
  const probe = `zsvp${randomBytes(3).toString('hex')}`;
  try {
    await sh('ip', ['link', 'add', probe, 'type', 'veth', 'peer', 'name', `${probe}p`]);
    await sh('ip', ['link', 'add', 'link', probe, 'name', `${probe}.7`, 'type', 'vlan', 'id', '7']);
    return undefined;
  } catch {
    return 'this kernel has no 802.1Q VLAN support (module 8021q)';
  } finally {
    await sh('ip', ['link', 'del', probe]).catch(() => undefined);
  }
}

t.test('as root: an L2Vlan bridge on a VLAN sub-interface', { skip: await vlanUnsupported() }, async (t) => {
  const tag = randomBytes(3).toString('hex');
  const phys = `zsdm${tag}`;
  const bridgeName = bridgeNameOf(phys, 42);
  t.teardown(async () => {
    await deleteBridge({ bridgeName, physicalInterface: phys, vlan: 42 }).catch(() => undefined);
    await sh('ip', ['link', 'del', phys]).catch(() => undefined);
  });
  await sh('ip', ['link', 'add', phys, 'type', 'veth', 'peer', 'name', `zsdp${tag}`]);
  t.equal(await ensureBridge({ bridgeName, physicalInterface: phys, vlan: 42 }), bridgeName);
  t.equal(await ensureBridge({ bridgeName, physicalInterface: phys, vlan: 42 }), bridgeName, 'idempotent');
  const vlanDev = (await sh('ip', ['-d', 'link', 'show', `${phys}.42`])).stdout;
  t.match(vlanDev, /vlan protocol 802\.1Q id 42/);
  t.match(vlanDev, new RegExp(`master ${bridgeName}`));
  await deleteBridge({ bridgeName, physicalInterface: phys, vlan: 42 });
  await t.rejects(sh('ip', ['link', 'show', `${phys}.42`]), /does not exist/);
});
