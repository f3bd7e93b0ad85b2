// Lookups (data sources): one existing object by uuid, name or (providers) type. Exactly one must match.
import type { ZStackClient } from '@zstack-ts/sdk';
import type { L2NetworkInventory, L3NetworkInventory, NetworkServiceProviderInventory, NetworkServiceProviderLookup, LookupByUuidOrName } from '../types.js';
import { explain, retry } from './client.js';

export type LookupKind = 'NetworkServiceProvider' | 'L2Network' | 'L3Network';
export interface LookupResults {
  NetworkServiceProvider: NetworkServiceProviderInventory;
  L2Network: L2NetworkInventory;
  L3Network: L3NetworkInventory;
}

const LABEL: Record<LookupKind, string> = { NetworkServiceProvider: 'network service provider', L2Network: 'L2 network', L3Network: 'L3 network' };

export async function lookup<K extends LookupKind>(zs: ZStackClient, kind: K, args: NetworkServiceProviderLookup): Promise<LookupResults[K]> {
  const q: string[] = [];
  const keys = kind === 'NetworkServiceProvider' ? (['uuid', 'name', 'type'] as const) : (['uuid', 'name'] as const);
  for (const k of keys) {
    const v = (args as Record<string, unknown>)[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') throw new Error(`get${kind}: ${k} must be a string`);
    q.push(`${k}=${v}`);
  }
  const by = q.join(', ');
  if (!q.length) throw new Error(`get${kind}: give ${keys.join(' or ')}`);
  let found: unknown[];
  try {
    found =
      kind === 'NetworkServiceProvider'
        ? ((await retry(() => zs.queryNetworkServiceProvider({ q }))).inventories ?? [])
        : kind === 'L2Network'
          ? ((await retry(() => zs.queryL2Network({ q }))).inventories ?? [])
          : ((await retry(() => zs.queryL3Network({ q }))).inventories ?? []);
  } catch (e) {
    throw explain(e, `get${kind}(${by})`);
  }
  if (found.length === 0) throw new Error(`get${kind}: no ${LABEL[kind]} with ${by}`);
  if (found.length > 1) {
    const uuids = found.map((x) => (x as { uuid: string }).uuid).join(', ');
    throw new Error(`get${kind}: ${found.length} ${LABEL[kind]}s match ${by} (${uuids}); look it up by uuid`);
  }
  return found[0] as LookupResults[K];
}

export type { LookupByUuidOrName };
