// Vip: CreateVip (a requiredIp or the allocator's pick), UpdateVip and ChangeVipState in place, DeleteVip (which
// deletes what uses it). Eip: CreateEip (attached at once with vmNicUuid), UpdateEip, ChangeEipState and
// Attach/DetachEip in place, DeleteEip. The network, the required address, the strategy and an EIP's VIP replace.
import type { ZStackClient } from '@zstack-ts/sdk';
import type { EipInputs, EipInventory, VipInputs, VipInventory } from '../types.js';
import { explain, newUuid, once, retry } from './client.js';
import { ResourceInitError, errorMessage, outputsOf, type Ctx, type Handler } from './common.js';
import { Checker, diffProps, type DiffRule } from './util.js';

const VIP_RULE: DiffRule = { replace: ['l3NetworkUuid', 'requiredIp', 'allocatorStrategy'], update: ['name', 'description', 'state'] };
const EIP_RULE: DiffRule = { replace: ['vipUuid'], update: ['name', 'description', 'state', 'vmNicUuid'] };
const STATES = ['Enabled', 'Disabled'] as const;
const STRATEGIES = ['RandomIpAllocatorStrategy', 'FirstAvailableIpAllocatorStrategy'] as const;

export async function getVip(zs: ZStackClient, uuid: string): Promise<VipInventory | undefined> {
  return (await retry(() => zs.queryVip({ q: [`uuid=${uuid}`] }))).inventories?.[0];
}

export async function getEip(zs: ZStackClient, uuid: string): Promise<EipInventory | undefined> {
  return (await retry(() => zs.queryEip({ q: [`uuid=${uuid}`] }))).inventories?.[0];
}

/** Name, description and state as declared (only what differs from the server is sent). */
async function applyVip(zs: ZStackClient, inv: VipInventory, want: VipInputs): Promise<VipInventory> {
  const set: Record<string, string> = {};
  if (want.name !== undefined && want.name !== inv.name) set.name = want.name;
  if (want.description !== undefined && want.description !== inv.description) set.description = want.description;
  try {
    if (Object.keys(set).length) inv = (await retry(() => zs.updateVip({ uuid: inv.uuid, ...set }))).inventory;
    if (want.state && want.state !== inv.state) {
      const stateEvent = want.state === 'Enabled' ? 'enable' : 'disable';
      inv = (await retry(() => zs.changeVipState({ uuid: inv.uuid, stateEvent }))).inventory;
    }
  } catch (e) {
    throw explain(e, `updating VIP ${inv.uuid}`);
  }
  return inv;
}

export const vip: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.name();
    c.description();
    c.uuid('l3NetworkUuid', true);
    c.ipv4('requiredIp');
    c.string('allocatorStrategy', { oneOf: STRATEGIES });
    c.string('state', { oneOf: STATES });
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, VIP_RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as VipInputs;
    let inv: VipInventory;
    const opts = once();
    try {
      inv = (
        await retry(() =>
          zs.createVip(
            {
              name: i.name,
              description: i.description,
              l3NetworkUuid: i.l3NetworkUuid,
              requiredIp: i.requiredIp,
              allocatorStrategy: i.allocatorStrategy,
              resourceUuid: newUuid(),
            },
            opts,
          ),
        )
      ).inventory;
    } catch (e) {
      throw explain(e, `creating VIP "${i.name}" on L3 network ${i.l3NetworkUuid}`);
    }
    try {
      inv = await applyVip(zs, inv, i);
    } catch (e) {
      throw new ResourceInitError(errorMessage(e), inv.uuid, outputsOf(inputs, inv));
    }
    return { id: inv.uuid, outs: outputsOf(inputs, inv) };
  },

  async read(ctx, id, props) {
    const inv = await getVip(await ctx.zs(), id);
    if (!inv) return { id: '', props: {} };
    return { id, props: outputsOf(props, inv) };
  },

  async update(ctx, id, _olds, news) {
    const zs = await ctx.zs();
    const inv = await getVip(zs, id);
    if (!inv) throw new Error(`VIP ${id} no longer exists; run \`pulumi refresh\` to drop it from the state`);
    return { outs: outputsOf(news, await applyVip(zs, inv, news as unknown as VipInputs)) };
  },

  async delete(ctx, id) {
    const zs = await ctx.zs();
    try {
      await retry(() => zs.deleteVip({ uuid: id }));
    } catch (e) {
      throw explain(e, `deleting VIP ${id}`);
    }
  },
};

/** Name, description, state and the NIC as declared: detached before a move, enabled before an attach. */
async function applyEip(zs: ZStackClient, inv: EipInventory, want: EipInputs, attach: boolean): Promise<EipInventory> {
  const set: Record<string, string> = {};
  if (want.name !== undefined && want.name !== inv.name) set.name = want.name;
  if (want.description !== undefined && want.description !== inv.description) set.description = want.description;
  const state = async (s: 'Enabled' | 'Disabled') => {
    if (inv.state !== s) inv = (await retry(() => zs.changeEipState({ uuid: inv.uuid, stateEvent: s === 'Enabled' ? 'enable' : 'disable' }))).inventory;
  };
  try {
    if (Object.keys(set).length) inv = (await retry(() => zs.updateEip({ uuid: inv.uuid, ...set }))).inventory;
    const nic = want.vmNicUuid ?? undefined;
    if (attach && inv.vmNicUuid && inv.vmNicUuid !== nic) inv = (await retry(() => zs.detachEip({ uuid: inv.uuid }))).inventory;
    if (want.state === 'Enabled' || (attach && nic && !inv.vmNicUuid)) await state('Enabled');
    if (attach && nic && !inv.vmNicUuid) inv = (await retry(() => zs.attachEip({ eipUuid: inv.uuid, vmNicUuid: nic }, once()))).inventory;
    if (want.state === 'Disabled') await state('Disabled');
  } catch (e) {
    throw explain(e, `updating EIP ${inv.uuid}`);
  }
  return inv;
}

export const eip: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.name();
    c.description();
    c.uuid('vipUuid', true);
    c.uuid('vmNicUuid', false);
    c.string('state', { oneOf: STATES });
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, EIP_RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as EipInputs;
    let inv: EipInventory;
    const opts = once();
    try {
      inv = (
        await retry(() => zs.createEip({ name: i.name, description: i.description, vipUuid: i.vipUuid, vmNicUuid: i.vmNicUuid, resourceUuid: newUuid() }, opts))
      ).inventory;
    } catch (e) {
      throw explain(e, `creating EIP "${i.name}" on VIP ${i.vipUuid}${i.vmNicUuid ? ` for VM NIC ${i.vmNicUuid}` : ''}`);
    }
    try {
      inv = await applyEip(zs, inv, i, false);
    } catch (e) {
      throw new ResourceInitError(errorMessage(e), inv.uuid, outputsOf(inputs, inv));
    }
    return { id: inv.uuid, outs: outputsOf(inputs, inv) };
  },

  async read(ctx, id, props) {
    const inv = await getEip(await ctx.zs(), id);
    if (!inv) return { id: '', props: {} };
    return { id, props: outputsOf(props, inv) };
  },

  async update(ctx, id, _olds, news) {
    const zs = await ctx.zs();
    const inv = await getEip(zs, id);
    if (!inv) throw new Error(`EIP ${id} no longer exists; run \`pulumi refresh\` to drop it from the state`);
    return { outs: outputsOf(news, await applyEip(zs, inv, news as unknown as EipInputs, true)) };
  },

  async delete(ctx, id) {
    const zs = await ctx.zs();
    try {
      await retry(() => zs.deleteEip({ uuid: id }));
    } catch (e) {
      throw explain(e, `deleting EIP ${id}`);
    }
  },
};
