// NetworkServiceProviderAttachment (provider ↔ L2 network) and NetworkServiceAttachment (the services one provider
// runs on one L3 network, id `l3Uuid:providerUuid`). The latter does the detach/attach dance of ZStack 1.1's
// "upgrade the virtual router provider to the flat provider" steps: services of `detachProviders` are detached, then
// the declared services attached; if the attach fails, what was detached is attached back.
import { ZStackError, type ZStackClient } from '@zstack-ts/sdk';
import type { NetworkServiceAttachmentInputs, NetworkServiceProviderAttachmentInputs, NetworkServiceProviderInventory, NetworkServiceRef } from '../types.js';
import { explain, isNotFound, isTransient, once, retry } from './client.js';
import { errorMessage, outputsOf, type Ctx, type Handler } from './common.js';
import { getL3 } from './l3.js';
import { Checker, SERVICE_TYPES, diffProps, orderLike, type DiffRule, type Props } from './util.js';

export async function listProviders(zs: ZStackClient): Promise<NetworkServiceProviderInventory[]> {
  return (await retry(() => zs.queryNetworkServiceProvider({}))).inventories ?? [];
}

function splitId(id: string, props: Props, a: string, b: string): [string, string] {
  const [x, y] = id.split(':');
  return [(props[a] as string | undefined) ?? x, (props[b] as string | undefined) ?? y];
}

// ---------------------------------------------------------------------------------------------------------------
// NetworkServiceProviderAttachment

const PROVIDER_RULE: DiffRule = { replace: ['l2NetworkUuid', 'providerUuid'], update: [] };

function providerOutputs(inputs: Props, p: NetworkServiceProviderInventory): Props {
  return outputsOf(inputs, {}, { providerType: p.type, providerName: p.name, networkServiceTypes: p.networkServiceTypes });
}

const inUse = (e: unknown) => e instanceof ZStackError && /still provides services/.test(e.details ?? '');

export const networkServiceProviderAttachment: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.uuid('l2NetworkUuid', true);
    c.uuid('providerUuid', true);
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, PROVIDER_RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as NetworkServiceProviderAttachmentInputs;
    try {
      // Idempotent on the server: attaching an attached provider succeeds (built-in providers are on every new L2).
      const { inventory } = await retry(() =>
        zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: i.l2NetworkUuid, networkServiceProviderUuid: i.providerUuid }, once()),
      );
      return { id: `${i.l2NetworkUuid}:${i.providerUuid}`, outs: providerOutputs(inputs, inventory) };
    } catch (e) {
      throw explain(e, `attaching network service provider ${i.providerUuid} to L2 network ${i.l2NetworkUuid}`);
    }
  },

  async read(ctx, id, props) {
    const [l2NetworkUuid, providerUuid] = splitId(id, props, 'l2NetworkUuid', 'providerUuid');
    const zs = await ctx.zs();
    const p = (await retry(() => zs.queryNetworkServiceProvider({ q: [`uuid=${providerUuid}`] }))).inventories?.[0];
    if (!p || !p.attachedL2NetworkUuids.includes(l2NetworkUuid)) return { id: '', props: {} };
    return { id, props: providerOutputs({ ...props, l2NetworkUuid, providerUuid }, p) };
  },

  async update() {
    throw new Error('a provider attachment cannot be changed in place');
  },

  async delete(ctx, id, props) {
    const [l2NetworkUuid, providerUuid] = splitId(id, props, 'l2NetworkUuid', 'providerUuid');
    const zs = await ctx.zs();
    try {
      // Services of L3 networks being detached in parallel may still hold the provider for a moment.
      await retry(() => zs.detachNetworkServiceProviderFromL2Network({ l2NetworkUuid, networkServiceProviderUuid: providerUuid }), {
        attempts: 5,
        baseMs: 150,
        retryIf: (e) => inUse(e) || isTransient(e),
      });
    } catch (e) {
      if (isNotFound(e)) return;
      const hint = inUse(e) ? ' (L3 networks outside this stack still use it: detach their services, or give this resource `retainOnDelete: true`)' : '';
      throw new Error(`${explain(e, `detaching network service provider ${providerUuid} from L2 network ${l2NetworkUuid}`).message}${hint}`);
    }
  },
};

// ---------------------------------------------------------------------------------------------------------------
// NetworkServiceAttachment

const SERVICE_RULE: DiffRule = {
  replace: ['l3NetworkUuid', 'providerUuid'],
  update: ['services', 'detachProviders'],
  sets: ['services', 'detachProviders'],
  // One service type has one provider per L3 network: the old attachment goes before the new one comes.
  deleteBeforeReplace: true,
};

const byProvider = (refs: NetworkServiceRef[]) => {
  const map: Record<string, string[]> = {};
  for (const r of refs) (map[r.networkServiceProviderUuid] ??= []).push(r.networkServiceType);
  return map;
};

const describeProvider = (providers: NetworkServiceProviderInventory[], uuid: string) => {
  const p = providers.find((x) => x.uuid === uuid);
  return p ? `${p.type} (${uuid})` : uuid;
};

/** Makes `providerUuid` run exactly `services` on the L3 network, moving services away from `detachProviders`. */
async function reconcileServices(zs: ZStackClient, i: NetworkServiceAttachmentInputs): Promise<Props> {
  const l3 = await getL3(zs, i.l3NetworkUuid);
  if (!l3) throw new Error(`L3 network ${i.l3NetworkUuid} does not exist`);
  const providers = await listProviders(zs);
  const ours = providers.find((p) => p.uuid === i.providerUuid);
  if (!ours) throw new Error(`network service provider ${i.providerUuid} does not exist`);
  const notOffered = i.services.filter((s) => !ours.networkServiceTypes.includes(s));
  if (notOffered.length) {
    throw new Error(
      `network service provider ${ours.type} (${ours.uuid}) does not offer ${notOffered.join(', ')}; it offers ${ours.networkServiceTypes.join(', ')}`,
    );
  }
  const detachUuids = new Set<string>();
  for (const key of i.detachProviders ?? []) {
    const matches = providers.filter((p) => p.uuid === key || p.type === key);
    if (!matches.length) throw new Error(`detachProviders: no network service provider has uuid or type "${key}"`);
    for (const p of matches) if (p.uuid !== ours.uuid) detachUuids.add(p.uuid);
  }

  const refs = l3.networkServices;
  const ourExtra = refs.filter((r) => r.networkServiceProviderUuid === ours.uuid && !i.services.includes(r.networkServiceType));
  const foreign = refs.filter((r) => detachUuids.has(r.networkServiceProviderUuid));
  const conflicts = refs.filter(
    (r) => r.networkServiceProviderUuid !== ours.uuid && !detachUuids.has(r.networkServiceProviderUuid) && i.services.includes(r.networkServiceType),
  );
  if (conflicts.length) {
    const what = conflicts.map((r) => `${r.networkServiceType} is provided by ${describeProvider(providers, r.networkServiceProviderUuid)}`).join(', ');
    const keys = [...new Set(conflicts.map((r) => providers.find((p) => p.uuid === r.networkServiceProviderUuid)?.type ?? r.networkServiceProviderUuid))];
    throw new Error(
      `cannot attach ${i.services.join(', ')} of ${ours.type} to L3 network ${l3.uuid}: ${what}; an L3 network has one provider per service type. ` +
        `Add detachProviders: ${JSON.stringify(keys)} to move them, or detach them first`,
    );
  }

  const toDetach = [...ourExtra, ...foreign];
  if (toDetach.length) {
    try {
      await retry(() => zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3.uuid, networkServices: byProvider(toDetach) }));
    } catch (e) {
      throw explain(e, `detaching ${toDetach.map((r) => r.networkServiceType).join(', ')} from L3 network ${l3.uuid}`);
    }
  }
  const missing = i.services.filter((s) => !refs.some((r) => r.networkServiceProviderUuid === ours.uuid && r.networkServiceType === s));
  let inv = l3;
  if (missing.length) {
    try {
      inv = (await retry(() => zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [ours.uuid]: missing } }, once()))).inventory;
    } catch (e) {
      const failure = explain(e, `attaching ${missing.join(', ')} of ${ours.type} (${ours.uuid}) to L3 network ${l3.uuid}`);
      // Put back what was moved away, so a failed move leaves the network as it was.
      if (foreign.length) {
        try {
          await retry(() => zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: byProvider(foreign) }, once()));
          failure.message += '; the services detached before were attached back';
        } catch (e2) {
          failure.message += `; attaching back the services detached before failed too: ${errorMessage(e2)}`;
        }
      }
      throw failure;
    }
  } else if (toDetach.length) {
    inv = (await getL3(zs, l3.uuid)) ?? l3;
  }
  return serviceOutputs(i as unknown as Props, ours.type, inv.networkServices);
}

function serviceOutputs(props: Props, providerType: string | undefined, refs: NetworkServiceRef[]): Props {
  const providerUuid = props.providerUuid as string;
  const actual = refs.filter((r) => r.networkServiceProviderUuid === providerUuid).map((r) => r.networkServiceType);
  return outputsOf(props, {}, { providerType, services: orderLike(actual, props.services) });
}

export const networkServiceAttachment: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.uuid('l3NetworkUuid', true);
    const provider = c.uuid('providerUuid', true);
    c.stringList('services', {
      required: true,
      nonEmpty: true,
      item: (s) => ((SERVICE_TYPES as readonly string[]).includes(s) ? undefined : `unknown network service type "${s}" (known: ${SERVICE_TYPES.join(', ')})`),
    });
    const detach = c.stringList('detachProviders', { item: (s) => (s.length === 0 || s.length > 255 ? 'must be a provider uuid or type' : undefined) });
    if (provider && detach?.includes(provider)) c.fail('detachProviders', "detachProviders must not list the attachment's own provider");
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, SERVICE_RULE);
  },

  async create(ctx: Ctx, inputs) {
    const i = inputs as unknown as NetworkServiceAttachmentInputs;
    const outs = await reconcileServices(await ctx.zs(), i);
    return { id: `${i.l3NetworkUuid}:${i.providerUuid}`, outs };
  },

  async read(ctx, id, props) {
    const [l3NetworkUuid, providerUuid] = splitId(id, props, 'l3NetworkUuid', 'providerUuid');
    const l3 = await getL3(await ctx.zs(), l3NetworkUuid);
    if (!l3) return { id: '', props: {} };
    return { id, props: serviceOutputs({ ...props, l3NetworkUuid, providerUuid }, props.providerType as string | undefined, l3.networkServices) };
  },

  async update(ctx, _id, _olds, news) {
    return { outs: await reconcileServices(await ctx.zs(), news as unknown as NetworkServiceAttachmentInputs) };
  },

  async delete(ctx, id, props) {
    const [l3NetworkUuid, providerUuid] = splitId(id, props, 'l3NetworkUuid', 'providerUuid');
    const zs = await ctx.zs();
    const l3 = await getL3(zs, l3NetworkUuid);
    if (!l3) return;
    const ours = l3.networkServices.filter((r) => r.networkServiceProviderUuid === providerUuid).map((r) => r.networkServiceType);
    if (!ours.length) return;
    try {
      await retry(() => zs.detachNetworkServiceFromL3Network({ l3NetworkUuid, networkServices: { [providerUuid]: ours } }));
    } catch (e) {
      if (!isNotFound(e)) throw explain(e, `detaching ${ours.join(', ')} from L3 network ${l3NetworkUuid}`);
    }
  },
};
