// Plain (resolved) input and output shapes of the resources, shared by the program side (resource classes) and the
// provider runtime that runs inside the dynamic-provider plugin. Types only: nothing here exists at run time.
import type { ReplyOf } from '@zstack-ts/sdk';

export type L2NetworkInventory = ReplyOf<'CreateL2NoVlanNetwork'>['inventory'];
export type L3NetworkInventory = ReplyOf<'CreateL3Network'>['inventory'];
export type IpRangeInventory = ReplyOf<'AddIpRange'>['inventory'];
export type NetworkServiceProviderInventory = ReplyOf<'AttachNetworkServiceProviderToL2Network'>['inventory'];
export type NetworkServiceRef = L3NetworkInventory['networkServices'][number];
export type VipInventory = ReplyOf<'CreateVip'>['inventory'];
export type EipInventory = ReplyOf<'CreateEip'>['inventory'];
export type SecurityGroupInventory = ReplyOf<'CreateSecurityGroup'>['inventory'];
export type SecurityGroupRuleInventory = SecurityGroupInventory['rules'][number];

export type L2NetworkType = 'L2NoVlanNetwork' | 'L2VlanNetwork';
export type L3NetworkCategory = 'Public' | 'Private' | 'System';
export type IpRangeType = 'Normal' | 'AddressPool';

/** The resource kinds this provider implements (the `type` part of their Pulumi type token). */
export type ResourceKind =
  | 'L2Network'
  | 'L3Network'
  | 'IpRange'
  | 'NetworkServiceProviderAttachment'
  | 'NetworkServiceAttachment'
  | 'Vip'
  | 'Eip'
  | 'SecurityGroup'
  | 'SecurityGroupRule'
  | 'SecurityGroupAttachment';

export interface L2NetworkInputs {
  name: string;
  description?: string;
  zoneUuid: string;
  physicalInterface: string;
  /** Derived from `vlan` when not given: `L2VlanNetwork` with a vlan, `L2NoVlanNetwork` without. */
  type?: L2NetworkType;
  vlan?: number;
  vSwitchType?: 'LinuxBridge';
  /** Clusters the L2 network is attached to (managed in place; order does not matter). */
  clusterUuids?: string[];
  /** Adopt the existing L2 network with this uuid instead of creating one (its other inputs must match it). */
  adoptUuid?: string;
}

export interface L3NetworkInputs {
  name: string;
  description?: string;
  l2NetworkUuid: string;
  type?: 'L3BasicNetwork';
  category?: L3NetworkCategory;
  system?: boolean;
  dnsDomain?: string;
  /** DNS servers, in order (managed in place). */
  dns?: string[];
  /** Adopt the existing L3 network with this uuid instead of creating one; name, description, DNS… are then applied. */
  adoptUuid?: string;
}

export interface IpRangeInputs {
  l3NetworkUuid: string;
  name: string;
  description?: string;
  /** Either `networkCidr` (with an optional `gateway`), or `startIp`/`endIp`/`netmask`/`gateway`. */
  networkCidr?: string;
  startIp?: string;
  endIp?: string;
  netmask?: string;
  gateway?: string;
  ipRangeType?: IpRangeType;
  /** Adopt the existing IP range with this uuid instead of adding one (its bounds must match the inputs). */
  adoptUuid?: string;
}

export interface NetworkServiceProviderAttachmentInputs {
  l2NetworkUuid: string;
  providerUuid: string;
}

export interface NetworkServiceAttachmentInputs {
  l3NetworkUuid: string;
  providerUuid: string;
  /** The service types this provider runs on the L3 network, exactly (e.g. `["DHCP", "Userdata"]`). */
  services: string[];
  /**
   * Providers (uuid or type, e.g. `VirtualRouter`) whose services on this L3 network are detached before these services
   * are attached: the "upgrade to the flat provider" move of ZStack 1.1's release notes.
   */
  detachProviders?: string[];
}

export interface VipInputs {
  name: string;
  description?: string;
  /** The network the address comes from (for EIPs: the virtual router's public network). */
  l3NetworkUuid: string;
  /** This address, else one the allocator picks. */
  requiredIp?: string;
  allocatorStrategy?: 'RandomIpAllocatorStrategy' | 'FirstAvailableIpAllocatorStrategy';
  /** `Enabled` (default) or `Disabled` (managed in place). */
  state?: 'Enabled' | 'Disabled';
}

export interface EipInputs {
  name: string;
  description?: string;
  vipUuid: string;
  /** The VM NIC the EIP is attached to; changed in place (detach, attach), absent = detached. */
  vmNicUuid?: string;
  state?: 'Enabled' | 'Disabled';
}

export interface SecurityGroupInputs {
  name: string;
  description?: string;
  /** `Enabled` (default) or `Disabled` (managed in place). */
  state?: 'Enabled' | 'Disabled';
}

export interface SecurityGroupRuleInputs {
  securityGroupUuid: string;
  type: 'Ingress' | 'Egress';
  protocol: 'TCP' | 'UDP' | 'ICMP';
  /** TCP/UDP: the first port (0–65535). ICMP: the ICMP type (-1 = any). */
  startPort: number;
  /** TCP/UDP: the last port (default `startPort`). ICMP: the ICMP code (-1 = any). */
  endPort?: number;
  /** Source (Ingress) or destination (Egress) IPv4 CIDR, default `0.0.0.0/0`. */
  allowedCidr?: string;
}

export interface SecurityGroupAttachmentInputs {
  securityGroupUuid: string;
  l3NetworkUuid: string;
}

export interface LookupByUuidOrName {
  uuid?: string;
  name?: string;
}

export interface NetworkServiceProviderLookup extends LookupByUuidOrName {
  /** e.g. `Flat`, `VirtualRouter`, `SecurityGroup`. */
  type?: string;
}
