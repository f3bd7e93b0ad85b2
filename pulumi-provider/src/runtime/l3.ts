// L3Network: CreateL3Network + AddDnsToL3Network, UpdateL3Network and DNS changes in place, services detached before
// DeleteL3Network. Changing the L2 network or the type replaces it.
import type { ZStackClient } from '@zstack-ts/sdk';
import type { L3NetworkInputs, L3NetworkInventory } from '../types.js';
import { explain, isNotFound, newUuid, once, retry } from './client.js';
import { ResourceInitError, errorMessage, outputsOf, type Ctx, type Handler } from './common.js';
import { Checker, diffProps, parseIpv4, type DiffRule, type Props } from './util.js';

const RULE: DiffRule = {
  replace: ['l2NetworkUuid', 'type', 'adoptUuid'],
  update: ['name', 'description', 'dnsDomain', 'category', 'system', 'dns'],
};

const HOSTNAME = /^(?=.{1,255}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const MUTABLE = ['name', 'description', 'dnsDomain', 'category', 'system'] as const;

export async function getL3(zs: ZStackClient, uuid: string): Promise<L3NetworkInventory | undefined> {
  const reply = await retry(() => zs.queryL3Network({ q: [`uuid=${uuid}`] }));
  return reply.inventories?.[0];
}

/** Removes and adds DNS servers until the list is exactly `want`, in order (the longest common prefix stays). */
async function reconcileDns(zs: ZStackClient, inv: L3NetworkInventory, want: string[] | undefined): Promise<L3NetworkInventory> {
  if (!want) return inv;
  const have = inv.dns;
  let keep = 0;
  while (keep < have.length && keep < want.length && have[keep] === want[keep]) keep++;
  for (const dns of have.slice(keep)) {
    inv = (await retry(() => zs.removeDnsFromL3Network({ l3NetworkUuid: inv.uuid, dns }))).inventory;
  }
  for (const dns of want.slice(keep)) {
    const opts = once();
    try {
      inv = (await retry(() => zs.addDnsToL3Network({ l3NetworkUuid: inv.uuid, dns }, opts))).inventory;
    } catch (e) {
      throw explain(e, `adding DNS server ${dns} to L3 network ${inv.uuid}`);
    }
  }
  return inv;
}

/** UpdateL3Network with the fields that differ from the server (system and category always travel together). */
async function applyFields(zs: ZStackClient, inv: L3NetworkInventory, want: L3NetworkInputs): Promise<L3NetworkInventory> {
  const set: Record<string, unknown> = {};
  for (const k of MUTABLE) {
    if (want[k] !== undefined && (inv as Record<string, unknown>)[k] !== want[k]) set[k] = want[k];
  }
  if (set.system !== undefined || set.category !== undefined) {
    set.system = want.system ?? inv.system;
    set.category = want.category ?? inv.category;
  }
  if (Object.keys(set).length === 0) return inv;
  try {
    return (await retry(() => zs.updateL3Network({ uuid: inv.uuid, ...set }))).inventory;
  } catch (e) {
    throw explain(e, `updating L3 network ${inv.uuid} (${Object.keys(set).join(', ')})`);
  }
}

/** Detaches every network service from the L3 network (before it is deleted). */
export async function detachAllServices(zs: ZStackClient, l3Uuid: string): Promise<void> {
  const refs = (await retry(() => zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${l3Uuid}`] }))).inventories ?? [];
  if (!refs.length) return;
  const byProvider: Record<string, string[]> = {};
  for (const r of refs) (byProvider[r.networkServiceProviderUuid] ??= []).push(r.networkServiceType);
  try {
    await retry(() => zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3Uuid, networkServices: byProvider }));
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

export const l3Network: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    const adopting = c.has('adoptUuid');
    c.name();
    c.description();
    c.uuid('l2NetworkUuid', true);
    if (!adopting && !c.has('type')) c.inputs.type = 'L3BasicNetwork';
    c.string('type', { oneOf: ['L3BasicNetwork'] });
    if (!adopting && !c.has('system')) c.inputs.system = false;
    const system = c.bool('system');
    if (!adopting && !c.has('category') && system !== undefined) c.inputs.category = system ? 'System' : 'Private';
    const category = c.string('category', { oneOf: ['Public', 'Private', 'System'] });
    if (system !== undefined && category !== undefined && (category === 'System') !== system) {
      c.fail('category', `category ${category} does not go with system=${system}: system networks are category System, others Public or Private`);
    }
    if (c.has('system') && !c.has('category') && adopting) c.fail('category', 'give category together with system');
    c.string('dnsDomain', { max: 255, pattern: HOSTNAME, patternText: 'a DNS domain such as zstack.local' });
    c.stringList('dns', { item: (s) => (parseIpv4(s) === undefined ? `"${s}" is not an IPv4 address` : undefined) });
    c.uuid('adoptUuid', false);
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as L3NetworkInputs;
    let inv: L3NetworkInventory;
    if (i.adoptUuid) {
      const found = await getL3(zs, i.adoptUuid);
      if (!found) throw new Error(`cannot adopt L3 network ${i.adoptUuid}: it does not exist`);
      for (const k of ['l2NetworkUuid', 'type'] as const) {
        if (i[k] !== undefined && found[k] !== i[k]) {
          throw new Error(
            `cannot adopt L3 network ${i.adoptUuid}: its ${k} is ${found[k]} on the server but ${i[k]} in the program (that cannot change in place)`,
          );
        }
      }
      inv = found;
      try {
        inv = await applyFields(zs, inv, i);
      } catch (e) {
        throw new ResourceInitError(errorMessage(e), inv.uuid, outputsOf(inputs, inv));
      }
    } else {
      const opts = once();
      try {
        inv = (
          await retry(() =>
            zs.createL3Network(
              {
                name: i.name,
                description: i.description,
                l2NetworkUuid: i.l2NetworkUuid,
                type: i.type,
                category: i.category,
                system: i.system,
                dnsDomain: i.dnsDomain,
                resourceUuid: newUuid(),
              },
              opts,
            ),
          )
        ).inventory;
      } catch (e) {
        throw explain(e, `creating L3 network "${i.name}"`);
      }
    }
    try {
      inv = await reconcileDns(zs, inv, i.dns);
    } catch (e) {
      throw new ResourceInitError(errorMessage(e), inv.uuid, outputsOf(inputs, inv));
    }
    return { id: inv.uuid, outs: outputsOf(inputs, inv) };
  },

  async read(ctx, id, props) {
    const inv = await getL3(await ctx.zs(), id);
    if (!inv) return { id: '', props: {} };
    return { id, props: outputsOf(props, inv) };
  },

  async update(ctx, id, _olds, news) {
    const zs = await ctx.zs();
    let inv = await getL3(zs, id);
    if (!inv) throw new Error(`L3 network ${id} no longer exists; run \`pulumi refresh\` to drop it from the state`);
    const i = news as unknown as L3NetworkInputs;
    inv = await applyFields(zs, inv, i);
    inv = await reconcileDns(zs, inv, i.dns);
    return { outs: outputsOf(news, inv) };
  },

  async delete(ctx, id) {
    const zs = await ctx.zs();
    try {
      // Services first (upstream's order); IP ranges go with the network.
      await detachAllServices(zs, id);
      await retry(() => zs.deleteL3Network({ uuid: id }));
    } catch (e) {
      throw explain(e, `deleting L3 network ${id}`);
    }
  },
};
