// @zstack-ts/pulumi: ZStack-TS networks as Pulumi resources (a dynamic provider; no plugin to install).
export {
  L2Network,
  L3Network,
  IpRange,
  NetworkServiceProviderAttachment,
  NetworkServiceAttachment,
  Vip,
  Eip,
  SecurityGroup,
  SecurityGroupRule,
  SecurityGroupAttachment,
  type L2NetworkArgs,
  type L3NetworkArgs,
  type IpRangeArgs,
  type NetworkServiceProviderAttachmentArgs,
  type NetworkServiceAttachmentArgs,
  type VipArgs,
  type EipArgs,
  type SecurityGroupArgs,
  type SecurityGroupRuleArgs,
  type SecurityGroupAttachmentArgs,
} from './resources.js';
export { getNetworkServiceProvider, getL2Network, getL3Network, getNetworkServiceProviderOutput, getL2NetworkOutput, getL3NetworkOutput } from './lookups.js';
export { makeProvider, providers, loadRuntime } from './provider.js';
export type * from './types.js';
