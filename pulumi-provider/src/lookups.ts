// Lookups for the program (like a provider's data sources): they run in the program's process, during preview too,
// with the credentials of the stack config (`zstack:endpoint`, `zstack:accountName`, `zstack:password`) or the
// environment. Each returns the inventory of exactly one object, or fails saying why.
import * as pulumi from '@pulumi/pulumi';
import { loadRuntime } from './provider.js';
import type { L2NetworkInventory, L3NetworkInventory, LookupByUuidOrName, NetworkServiceProviderInventory, NetworkServiceProviderLookup } from './types.js';
import type { Settings } from './runtime/index.js';

function programSettings(): Settings {
  const c = new pulumi.Config('zstack');
  return {
    endpoint: c.get('endpoint'),
    accountName: c.get('accountName'),
    password: c.get('password'),
    timeoutMs: c.getNumber('timeoutMs'),
    pollIntervalMs: c.getNumber('pollIntervalMs'),
  };
}

/** A network service provider by `type` (`Flat`, `VirtualRouter`, `SecurityGroup`), `uuid` or `name`. */
export async function getNetworkServiceProvider(args: NetworkServiceProviderLookup): Promise<NetworkServiceProviderInventory> {
  return (await loadRuntime()).lookup('NetworkServiceProvider', { ...args }, programSettings());
}

export async function getL2Network(args: LookupByUuidOrName): Promise<L2NetworkInventory> {
  return (await loadRuntime()).lookup('L2Network', { ...args }, programSettings());
}

export async function getL3Network(args: LookupByUuidOrName): Promise<L3NetworkInventory> {
  return (await loadRuntime()).lookup('L3Network', { ...args }, programSettings());
}

type InputArgs<T> = pulumi.Input<{ [K in keyof T]: pulumi.Input<T[K]> }>;

/** `getNetworkServiceProvider` taking Inputs (e.g. another resource's outputs). */
export function getNetworkServiceProviderOutput(args: InputArgs<NetworkServiceProviderLookup>): pulumi.Output<NetworkServiceProviderInventory> {
  return pulumi.output(args).apply((a) => getNetworkServiceProvider(a as NetworkServiceProviderLookup));
}

export function getL2NetworkOutput(args: InputArgs<LookupByUuidOrName>): pulumi.Output<L2NetworkInventory> {
  return pulumi.output(args).apply((a) => getL2Network(a as LookupByUuidOrName));
}

export function getL3NetworkOutput(args: InputArgs<LookupByUuidOrName>): pulumi.Output<L3NetworkInventory> {
  return pulumi.output(args).apply((a) => getL3Network(a as LookupByUuidOrName));
}
