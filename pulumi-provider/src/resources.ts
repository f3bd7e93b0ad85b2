// The resource classes a Pulumi program uses. Every output is declared on its class *and* passed as an `undefined`
// input, which is how a dynamic resource gets Outputs for properties only the provider fills in (uuid, state, …).
import * as pulumi from '@pulumi/pulumi';
import { providers } from './provider.js';
import type {
  IpRangeInventory,
  IpRangeType,
  L2NetworkType,
  L3NetworkCategory,
  L3NetworkInventory,
  NetworkServiceRef,
  SecurityGroupRuleInventory,
} from './types.js';

type In<T> = pulumi.Input<T>;
type Out<T> = pulumi.Output<T>;
const MODULE = 'zstack';

function outputs(keys: readonly string[], args: object | undefined): pulumi.Inputs {
  const props: pulumi.Inputs = {};
  for (const k of keys) props[k] = undefined;
  return { ...props, ...(args ?? {}) };
}

// ---------------------------------------------------------------------------------------------------------------

export interface L2NetworkArgs {
  name: In<string>;
  description?: In<string>;
  zoneUuid: In<string>;
  /** The hosts' interface, e.g. `eth0`. */
  physicalInterface: In<string>;
  /** Derived from `vlan` when left out. */
  type?: In<L2NetworkType>;
  vlan?: In<number>;
  vSwitchType?: In<'LinuxBridge'>;
  /** Clusters to attach the L2 network to (changed in place). */
  clusterUuids?: In<In<string>[]>;
  /** Adopt this existing L2 network instead of creating one (see the README: `pulumi import` does not work here). */
  adoptUuid?: In<string>;
}

const L2_OUTPUTS = [
  'uuid',
  'name',
  'description',
  'zoneUuid',
  'physicalInterface',
  'type',
  'vlan',
  'vSwitchType',
  'virtualNetworkId',
  'isolated',
  'pvlan',
  'attachedClusterUuids',
  'clusterUuids',
  'adoptUuid',
  'createDate',
  'lastOpDate',
] as const;

/** An L2 network (`L2NoVlanNetwork`, or `L2VlanNetwork` with `vlan`). Only `clusterUuids` changes in place. */
export class L2Network extends pulumi.dynamic.Resource {
  declare readonly uuid: Out<string>;
  declare readonly name: Out<string>;
  declare readonly description: Out<string | undefined>;
  declare readonly zoneUuid: Out<string>;
  declare readonly physicalInterface: Out<string>;
  declare readonly type: Out<L2NetworkType>;
  declare readonly vlan: Out<number | undefined>;
  declare readonly vSwitchType: Out<string>;
  declare readonly virtualNetworkId: Out<number | undefined>;
  declare readonly isolated: Out<boolean | undefined>;
  declare readonly pvlan: Out<string | undefined>;
  declare readonly attachedClusterUuids: Out<string[]>;
  declare readonly clusterUuids: Out<string[] | undefined>;
  declare readonly adoptUuid: Out<string | undefined>;
  declare readonly createDate: Out<string>;
  declare readonly lastOpDate: Out<string>;

  constructor(name: string, args: L2NetworkArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.L2Network, name, outputs(L2_OUTPUTS, args), opts, MODULE, 'L2Network');
  }

  /** A read-only reference to an existing L2 network (`id` = its uuid); nothing is changed or deleted. */
  static get(name: string, id: In<string>, opts?: pulumi.CustomResourceOptions): L2Network {
    return new L2Network(name, {} as L2NetworkArgs, { ...opts, id });
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface L3NetworkArgs {
  name: In<string>;
  description?: In<string>;
  l2NetworkUuid: In<string>;
  type?: In<'L3BasicNetwork'>;
  /** `Private` by default (`System` for system networks). */
  category?: In<L3NetworkCategory>;
  system?: In<boolean>;
  dnsDomain?: In<string>;
  /** DNS servers, in order (changed in place). */
  dns?: In<In<string>[]>;
  /** Adopt this existing L3 network instead of creating one; the declared name, DNS… are applied to it. */
  adoptUuid?: In<string>;
}

const L3_OUTPUTS = [
  'uuid',
  'name',
  'description',
  'type',
  'zoneUuid',
  'l2NetworkUuid',
  'state',
  'dnsDomain',
  'system',
  'category',
  'ipVersion',
  'enableIPAM',
  'isolated',
  'dns',
  'ipRanges',
  'networkServices',
  'hostRoute',
  'reservedIpRanges',
  'adoptUuid',
  'createDate',
  'lastOpDate',
] as const;

/** An L3 network. `l2NetworkUuid` and `type` replace it; name, description, DNS domain, category/system and `dns` update in place. */
export class L3Network extends pulumi.dynamic.Resource {
  declare readonly uuid: Out<string>;
  declare readonly name: Out<string>;
  declare readonly description: Out<string | undefined>;
  declare readonly type: Out<string>;
  declare readonly zoneUuid: Out<string>;
  declare readonly l2NetworkUuid: Out<string>;
  declare readonly state: Out<'Enabled' | 'Disabled'>;
  declare readonly dnsDomain: Out<string | undefined>;
  declare readonly system: Out<boolean>;
  declare readonly category: Out<L3NetworkCategory>;
  declare readonly ipVersion: Out<number | undefined>;
  declare readonly enableIPAM: Out<boolean | undefined>;
  declare readonly isolated: Out<boolean | undefined>;
  declare readonly dns: Out<string[]>;
  /** As last read: the ranges are managed by `IpRange` resources. */
  declare readonly ipRanges: Out<IpRangeInventory[]>;
  /** As last read: the services are managed by `NetworkServiceAttachment` resources. */
  declare readonly networkServices: Out<NetworkServiceRef[]>;
  declare readonly hostRoute: Out<L3NetworkInventory['hostRoute']>;
  declare readonly reservedIpRanges: Out<L3NetworkInventory['reservedIpRanges']>;
  declare readonly adoptUuid: Out<string | undefined>;
  declare readonly createDate: Out<string>;
  declare readonly lastOpDate: Out<string>;

  constructor(name: string, args: L3NetworkArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.L3Network, name, outputs(L3_OUTPUTS, args), opts, MODULE, 'L3Network');
  }

  /** A read-only reference to an existing L3 network (`id` = its uuid); nothing is changed or deleted. */
  static get(name: string, id: In<string>, opts?: pulumi.CustomResourceOptions): L3Network {
    return new L3Network(name, {} as L3NetworkArgs, { ...opts, id });
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface IpRangeArgs {
  l3NetworkUuid: In<string>;
  name: In<string>;
  description?: In<string>;
  /** e.g. `192.168.10.0/24`: the usable hosts, the gateway being the first host (or `gateway`: first or last host). */
  networkCidr?: In<string>;
  startIp?: In<string>;
  endIp?: In<string>;
  netmask?: In<string>;
  gateway?: In<string>;
  ipRangeType?: In<IpRangeType>;
  /** Adopt this existing IP range instead of adding one (its bounds must match). */
  adoptUuid?: In<string>;
}

const IP_RANGE_OUTPUTS = [
  'uuid',
  'l3NetworkUuid',
  'name',
  'description',
  'startIp',
  'endIp',
  'netmask',
  'gateway',
  'networkCidr',
  'ipVersion',
  'prefixLen',
  'ipRangeType',
  'adoptUuid',
  'createDate',
  'lastOpDate',
] as const;

/** An IP range of an L3 network. ZStack cannot change a range: any change replaces it (the old one is deleted first). */
export class IpRange extends pulumi.dynamic.Resource {
  declare readonly uuid: Out<string>;
  declare readonly l3NetworkUuid: Out<string>;
  declare readonly name: Out<string>;
  declare readonly description: Out<string | undefined>;
  declare readonly startIp: Out<string>;
  declare readonly endIp: Out<string>;
  declare readonly netmask: Out<string>;
  declare readonly gateway: Out<string>;
  declare readonly networkCidr: Out<string | undefined>;
  declare readonly ipVersion: Out<number | undefined>;
  declare readonly prefixLen: Out<number | undefined>;
  declare readonly ipRangeType: Out<IpRangeType | undefined>;
  declare readonly adoptUuid: Out<string | undefined>;
  declare readonly createDate: Out<string>;
  declare readonly lastOpDate: Out<string>;

  constructor(name: string, args: IpRangeArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.IpRange, name, outputs(IP_RANGE_OUTPUTS, args), opts, MODULE, 'IpRange');
  }

  static get(name: string, id: In<string>, opts?: pulumi.CustomResourceOptions): IpRange {
    return new IpRange(name, {} as IpRangeArgs, { ...opts, id });
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface NetworkServiceProviderAttachmentArgs {
  l2NetworkUuid: In<string>;
  /** e.g. from `getNetworkServiceProvider({ type: "Flat" })`. */
  providerUuid: In<string>;
}

const PROVIDER_ATTACHMENT_OUTPUTS = ['l2NetworkUuid', 'providerUuid', 'providerType', 'providerName', 'networkServiceTypes'] as const;

/** A network service provider attached to an L2 network (id `l2NetworkUuid:providerUuid`); needed before its services can run on the L2's L3 networks. */
export class NetworkServiceProviderAttachment extends pulumi.dynamic.Resource {
  declare readonly l2NetworkUuid: Out<string>;
  declare readonly providerUuid: Out<string>;
  declare readonly providerType: Out<string>;
  declare readonly providerName: Out<string>;
  declare readonly networkServiceTypes: Out<string[]>;

  constructor(name: string, args: NetworkServiceProviderAttachmentArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.NetworkServiceProviderAttachment, name, outputs(PROVIDER_ATTACHMENT_OUTPUTS, args), opts, MODULE, 'NetworkServiceProviderAttachment');
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface NetworkServiceAttachmentArgs {
  l3NetworkUuid: In<string>;
  providerUuid: In<string>;
  /** Exactly the services this provider runs on the L3 network, e.g. `["DHCP", "Userdata"]` (changed in place). */
  services: In<In<string>[]>;
  /**
   * Providers (uuid or type, e.g. `"VirtualRouter"`) whose services on this L3 network are detached first: the move
   * from the virtual router to the flat provider. Without it, a service type already run by another provider fails.
   */
  detachProviders?: In<In<string>[]>;
}

const SERVICE_ATTACHMENT_OUTPUTS = ['l3NetworkUuid', 'providerUuid', 'providerType', 'services', 'detachProviders'] as const;

/** The services one provider runs on one L3 network (id `l3NetworkUuid:providerUuid`). */
export class NetworkServiceAttachment extends pulumi.dynamic.Resource {
  declare readonly l3NetworkUuid: Out<string>;
  declare readonly providerUuid: Out<string>;
  declare readonly providerType: Out<string>;
  declare readonly services: Out<string[]>;
  declare readonly detachProviders: Out<string[] | undefined>;

  constructor(name: string, args: NetworkServiceAttachmentArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.NetworkServiceAttachment, name, outputs(SERVICE_ATTACHMENT_OUTPUTS, args), opts, MODULE, 'NetworkServiceAttachment');
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface VipArgs {
  name: In<string>;
  description?: In<string>;
  /** The network the address comes from (for an EIP: the virtual router's public network). */
  l3NetworkUuid: In<string>;
  /** This address (it must be free in a range of the network); else the allocator picks one. */
  requiredIp?: In<string>;
  allocatorStrategy?: In<'RandomIpAllocatorStrategy' | 'FirstAvailableIpAllocatorStrategy'>;
  /** `Enabled` (default) or `Disabled`, changed in place. */
  state?: In<'Enabled' | 'Disabled'>;
}

const VIP_OUTPUTS = [
  'uuid',
  'name',
  'description',
  'l3NetworkUuid',
  'requiredIp',
  'allocatorStrategy',
  'ip',
  'state',
  'gateway',
  'netmask',
  'serviceProvider',
  'peerL3NetworkUuid',
  'useFor',
  'createDate',
  'lastOpDate',
] as const;

/** A VIP: an address of an L3 network for one network service. The network, `requiredIp` and the strategy replace it. */
export class Vip extends pulumi.dynamic.Resource {
  declare readonly uuid: Out<string>;
  declare readonly name: Out<string>;
  declare readonly description: Out<string | undefined>;
  declare readonly l3NetworkUuid: Out<string>;
  declare readonly requiredIp: Out<string | undefined>;
  declare readonly allocatorStrategy: Out<string | undefined>;
  /** The address it got. */
  declare readonly ip: Out<string>;
  declare readonly state: Out<'Enabled' | 'Disabled'>;
  declare readonly gateway: Out<string>;
  declare readonly netmask: Out<string>;
  declare readonly serviceProvider: Out<string | undefined>;
  declare readonly peerL3NetworkUuid: Out<string | undefined>;
  /** As last read: the service using it (`Eip`, `PortForwarding`…). */
  declare readonly useFor: Out<string | undefined>;
  declare readonly createDate: Out<string>;
  declare readonly lastOpDate: Out<string>;

  constructor(name: string, args: VipArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.Vip, name, outputs(VIP_OUTPUTS, args), opts, MODULE, 'Vip');
  }

  static get(name: string, id: In<string>, opts?: pulumi.CustomResourceOptions): Vip {
    return new Vip(name, {} as VipArgs, { ...opts, id });
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface EipArgs {
  name: In<string>;
  description?: In<string>;
  vipUuid: In<string>;
  /** The VM NIC to attach to (changed in place: detached from the old one, attached to the new one); absent = detached. */
  vmNicUuid?: In<string>;
  state?: In<'Enabled' | 'Disabled'>;
}

const EIP_OUTPUTS = ['uuid', 'name', 'description', 'vipUuid', 'vmNicUuid', 'state', 'vipIp', 'guestIp', 'createDate', 'lastOpDate'] as const;

/** An EIP: its VIP mapped to a VM NIC on the guest network's virtual router. A new `vipUuid` replaces it. */
export class Eip extends pulumi.dynamic.Resource {
  declare readonly uuid: Out<string>;
  declare readonly name: Out<string>;
  declare readonly description: Out<string | undefined>;
  declare readonly vipUuid: Out<string>;
  declare readonly vmNicUuid: Out<string | undefined>;
  declare readonly state: Out<'Enabled' | 'Disabled'>;
  declare readonly vipIp: Out<string>;
  declare readonly guestIp: Out<string | undefined>;
  declare readonly createDate: Out<string>;
  declare readonly lastOpDate: Out<string>;

  constructor(name: string, args: EipArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.Eip, name, outputs(EIP_OUTPUTS, args), opts, MODULE, 'Eip');
  }

  static get(name: string, id: In<string>, opts?: pulumi.CustomResourceOptions): Eip {
    return new Eip(name, {} as EipArgs, { ...opts, id });
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface SecurityGroupArgs {
  name: In<string>;
  description?: In<string>;
  /** `Enabled` (default) or `Disabled`, changed in place. */
  state?: In<'Enabled' | 'Disabled'>;
}

const SECURITY_GROUP_OUTPUTS = ['uuid', 'name', 'description', 'state', 'rules', 'attachedL3NetworkUuids', 'createDate', 'lastOpDate'] as const;

/** A security group. Name, description and `state` change in place; its rules and networks are their own resources. */
export class SecurityGroup extends pulumi.dynamic.Resource {
  declare readonly uuid: Out<string>;
  declare readonly name: Out<string>;
  declare readonly description: Out<string | undefined>;
  declare readonly state: Out<'Enabled' | 'Disabled'>;
  /** As last read: the rules are managed by `SecurityGroupRule` resources. */
  declare readonly rules: Out<SecurityGroupRuleInventory[]>;
  /** As last read: the networks are managed by `SecurityGroupAttachment` resources. */
  declare readonly attachedL3NetworkUuids: Out<string[]>;
  declare readonly createDate: Out<string>;
  declare readonly lastOpDate: Out<string>;

  constructor(name: string, args: SecurityGroupArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.SecurityGroup, name, outputs(SECURITY_GROUP_OUTPUTS, args), opts, MODULE, 'SecurityGroup');
  }

  static get(name: string, id: In<string>, opts?: pulumi.CustomResourceOptions): SecurityGroup {
    return new SecurityGroup(name, {} as SecurityGroupArgs, { ...opts, id });
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface SecurityGroupRuleArgs {
  securityGroupUuid: In<string>;
  type: In<'Ingress' | 'Egress'>;
  protocol: In<'TCP' | 'UDP' | 'ICMP'>;
  /** TCP/UDP: the first port (0–65535). ICMP: the ICMP type (-1 = any). */
  startPort: In<number>;
  /** TCP/UDP: the last port (default `startPort`, not below it). ICMP: the ICMP code (-1 = any). */
  endPort?: In<number>;
  /** Source (Ingress) or destination (Egress) IPv4 CIDR, default `0.0.0.0/0`. */
  allowedCidr?: In<string>;
}

const SECURITY_GROUP_RULE_OUTPUTS = [
  'uuid',
  'securityGroupUuid',
  'type',
  'protocol',
  'startPort',
  'endPort',
  'allowedCidr',
  'state',
  'createDate',
  'lastOpDate',
] as const;

/** One rule of a security group. ZStack cannot change a rule: any change replaces it (the new one is added first). */
export class SecurityGroupRule extends pulumi.dynamic.Resource {
  declare readonly uuid: Out<string>;
  declare readonly securityGroupUuid: Out<string>;
  declare readonly type: Out<'Ingress' | 'Egress'>;
  declare readonly protocol: Out<'TCP' | 'UDP' | 'ICMP'>;
  declare readonly startPort: Out<number>;
  declare readonly endPort: Out<number>;
  declare readonly allowedCidr: Out<string>;
  declare readonly state: Out<'Enabled' | 'Disabled' | undefined>;
  declare readonly createDate: Out<string>;
  declare readonly lastOpDate: Out<string>;

  constructor(name: string, args: SecurityGroupRuleArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.SecurityGroupRule, name, outputs(SECURITY_GROUP_RULE_OUTPUTS, args), opts, MODULE, 'SecurityGroupRule');
  }
}

// ---------------------------------------------------------------------------------------------------------------

export interface SecurityGroupAttachmentArgs {
  securityGroupUuid: In<string>;
  l3NetworkUuid: In<string>;
}

const SECURITY_GROUP_ATTACHMENT_OUTPUTS = ['securityGroupUuid', 'l3NetworkUuid'] as const;

/** A security group attached to an L3 network (id `securityGroupUuid:l3NetworkUuid`); both replace it. */
export class SecurityGroupAttachment extends pulumi.dynamic.Resource {
  declare readonly securityGroupUuid: Out<string>;
  declare readonly l3NetworkUuid: Out<string>;

  constructor(name: string, args: SecurityGroupAttachmentArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.SecurityGroupAttachment, name, outputs(SECURITY_GROUP_ATTACHMENT_OUTPUTS, args), opts, MODULE, 'SecurityGroupAttachment');
  }
}
