// The provider runtime: what the serialized dynamic providers import *inside* their methods (never captured), inside
// the dynamic-provider plugin or the program. It holds the real work: checks, diffs and the SDK calls.
import type { ResourceKind } from '../types.js';
import { clientFor, configure as configureSettings, loggedIn, settingsFor, type ConfigLike, type Settings } from './client.js';
import type { Ctx, Handler } from './common.js';
import { ipRange } from './ip-range.js';
import { l2Network } from './l2.js';
import { l3Network } from './l3.js';
import { lookup as lookupWith, type LookupKind, type LookupResults } from './lookups.js';
import { networkServiceAttachment, networkServiceProviderAttachment } from './services.js';
import { securityGroup, securityGroupAttachment, securityGroupRule } from './security-group.js';
import { eip, vip } from './vip-eip.js';
import type { CheckResult, DiffResult, Props } from './util.js';

export { ResourceInitError } from './common.js';
export type { Handler, Ctx } from './common.js';
export type { Settings, ConfigLike } from './client.js';
export type { LookupKind, LookupResults } from './lookups.js';
export * as util from './util.js';

export const handlers: Record<ResourceKind, Handler> = {
  L2Network: l2Network,
  L3Network: l3Network,
  IpRange: ipRange,
  NetworkServiceProviderAttachment: networkServiceProviderAttachment,
  NetworkServiceAttachment: networkServiceAttachment,
  Vip: vip,
  Eip: eip,
  SecurityGroup: securityGroup,
  SecurityGroupRule: securityGroupRule,
  SecurityGroupAttachment: securityGroupAttachment,
};

function handler(kind: ResourceKind): Handler {
  const h = handlers[kind];
  if (!h) throw new Error(`unknown ZStack resource kind ${kind}`);
  return h;
}

/** The context of one provider object: its client comes from its stack config, or the environment. */
function ctxOf(provider: object): Ctx {
  return { zs: () => loggedIn(clientFor(provider)) };
}

/** Called by the plugin once per provider with the stack config (`zstack:endpoint`, …). */
export function configure(provider: object, config: ConfigLike): void {
  configureSettings(provider, config);
}

export function check(kind: ResourceKind, olds: Props, news: Props): CheckResult {
  return handler(kind).check(olds ?? {}, news ?? {});
}

export function diff(kind: ResourceKind, id: string, olds: Props, news: Props): DiffResult {
  const { changes, replaces, deleteBeforeReplace } = handler(kind).diff(id, olds ?? {}, news ?? {});
  return { changes, replaces, deleteBeforeReplace };
}

export function create(provider: object, kind: ResourceKind, inputs: Props) {
  return handler(kind).create(ctxOf(provider), inputs);
}

export function read(provider: object, kind: ResourceKind, id: string, props: Props | undefined) {
  return handler(kind).read(ctxOf(provider), id, props ?? {});
}

export function update(provider: object, kind: ResourceKind, id: string, olds: Props, news: Props) {
  return handler(kind).update(ctxOf(provider), id, olds, news);
}

export function remove(provider: object, kind: ResourceKind, id: string, props: Props) {
  return handler(kind).delete(ctxOf(provider), id, props ?? {});
}

/** A lookup from the program: credentials from the program's stack config (`settings`), else the environment. */
export async function lookup<K extends LookupKind>(kind: K, args: Props, settings: Settings = {}): Promise<LookupResults[K]> {
  return lookupWith(await loggedIn(clientFor(undefined, settings)), kind, args);
}

export { settingsFor };
