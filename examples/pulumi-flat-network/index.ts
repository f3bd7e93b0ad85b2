// ZStack 1.1 release notes §9, "Upgrade Virtual Router Provider To Flat Network Provider", as a Pulumi program: the
// end state is declared and `pulumi up` does the detach/attach dance (detach the virtual router's services, attach
// the flat provider to the L2 network, attach its DHCP and Userdata to the L3 network). Optionally it also declares a
// new network served by the flat provider from the start. See pulumi-provider/README.md for how to run it.
import * as pulumi from '@pulumi/pulumi';
import * as zstack from '@zstack-ts/pulumi';

const config = new pulumi.Config();
const flatServices = config.getObject<string[]>('flatServices') ?? ['DHCP', 'Userdata'];

// Steps 3 of §9: the flat provider (a lookup: runs in preview too).
const flat = await zstack.getNetworkServiceProvider({ type: 'Flat' });

// The existing L3 network (§9's 1a82c269…): adopted, so its name and DNS servers are managed from here on;
// `retainOnDelete` keeps it when the stack is destroyed.
let upgraded: zstack.L3Network | undefined;
let upgradedServices: zstack.NetworkServiceAttachment | undefined;
const l3NetworkUuid = config.get('l3NetworkUuid');
if (l3NetworkUuid) {
  const existing = await zstack.getL3Network({ uuid: l3NetworkUuid });
  // Step 5: the flat provider on the L3's L2 network.
  const flatOnL2 = new zstack.NetworkServiceProviderAttachment('flat-on-existing-l2', {
    l2NetworkUuid: existing.l2NetworkUuid,
    providerUuid: flat.uuid,
  });
  upgraded = new zstack.L3Network(
    'existing-l3',
    { adoptUuid: existing.uuid, name: existing.name, l2NetworkUuid: existing.l2NetworkUuid, dns: existing.dns },
    { retainOnDelete: true },
  );
  // Steps 1, 2 and 6: whatever the virtual router runs here is detached, then the flat DHCP and Userdata attached.
  upgradedServices = new zstack.NetworkServiceAttachment(
    'existing-l3-flat',
    { l3NetworkUuid: upgraded.uuid, providerUuid: flat.uuid, services: flatServices, detachProviders: ['VirtualRouter'] },
    { dependsOn: flatOnL2 },
  );
}

// A new network that the flat provider serves from the start.
let created: zstack.L3Network | undefined;
let range: zstack.IpRange | undefined;
const zoneUuid = config.get('zoneUuid');
if (zoneUuid) {
  const l2 = new zstack.L2Network('flat-l2', {
    name: 'flat-l2',
    zoneUuid,
    physicalInterface: config.get('physicalInterface') ?? 'eth1',
    clusterUuids: config.getObject<string[]>('clusterUuids'),
  });
  const flatOnL2 = new zstack.NetworkServiceProviderAttachment('flat-on-new-l2', { l2NetworkUuid: l2.uuid, providerUuid: flat.uuid });
  created = new zstack.L3Network('flat-l3', {
    name: 'flat-l3',
    description: 'served by the flat network provider',
    l2NetworkUuid: l2.uuid,
    dnsDomain: 'flat.zstack.local',
    dns: ['223.5.5.5', '8.8.8.8'],
  });
  range = new zstack.IpRange('flat-range', { l3NetworkUuid: created.uuid, name: 'flat-range', networkCidr: config.get('cidr') ?? '192.168.100.0/24' });
  new zstack.NetworkServiceAttachment(
    'flat-l3-flat',
    { l3NetworkUuid: created.uuid, providerUuid: flat.uuid, services: flatServices },
    { dependsOn: flatOnL2 },
  );
}

export const flatProviderUuid = flat.uuid;
export const upgradedL3Uuid = upgraded?.uuid;
export const upgradedServiceList = upgradedServices?.services;
export const newL3Uuid = created?.uuid;
export const newRange = range ? pulumi.interpolate`${range.startIp}-${range.endIp} via ${range.gateway}` : undefined;
