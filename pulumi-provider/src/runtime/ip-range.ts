// IpRange: AddIpRange or AddIpRangeByNetworkCidr, DeleteIpRange. ZStack cannot change a range, so every input
// replaces it, and the old range goes first (the new one would overlap it or differ in CIDR, which ZStack refuses).
import type { ZStackClient } from '@zstack-ts/sdk';
import type { IpRangeInputs, IpRangeInventory } from '../types.js';
import { explain, newUuid, once, retry } from './client.js';
import { outputsOf, type Ctx, type Handler } from './common.js';
import { Checker, diffProps, formatIpv4, netmaskPrefix, parseCidr, prefixMask, type DiffRule } from './util.js';

const RULE: DiffRule = {
  replace: ['l3NetworkUuid', 'name', 'description', 'networkCidr', 'startIp', 'endIp', 'netmask', 'gateway', 'ipRangeType', 'adoptUuid'],
  update: [],
  deleteBeforeReplace: true,
};

export async function getIpRange(zs: ZStackClient, uuid: string): Promise<IpRangeInventory | undefined> {
  const reply = await retry(() => zs.queryIpRange({ q: [`uuid=${uuid}`] }));
  return reply.inventories?.[0];
}

function checkCidrForm(c: Checker): void {
  const raw = c.inputs.networkCidr;
  for (const k of ['startIp', 'endIp', 'netmask'] as const) {
    if (c.has(k)) c.fail(k, `give either networkCidr or startIp/endIp/netmask, not both (${k} is set)`);
  }
  const cidr = parseCidr(raw);
  if (!cidr) return c.fail('networkCidr', `networkCidr must be an IPv4 CIDR such as 192.168.10.0/24, got ${JSON.stringify(raw)}`);
  if (cidr.prefix > 30) return c.fail('networkCidr', `networkCidr ${cidr.canonical} has no usable host range (the prefix must be /30 or shorter)`);
  c.inputs.networkCidr = cidr.canonical;
  const gw = c.ipv4('gateway');
  if (gw === undefined) return;
  const first = cidr.network + 1;
  const last = ((cidr.network | ~prefixMask(cidr.prefix)) >>> 0) - 1;
  if (gw < first || gw > last) return c.fail('gateway', `gateway ${formatIpv4(gw)} is not a host address of ${cidr.canonical}`);
  if (gw !== first && gw !== last) {
    c.fail(
      'gateway',
      `gateway ${formatIpv4(gw)} is in the middle of ${cidr.canonical}, which splits it into two ranges: use the first or last host, or declare two IpRange resources with startIp/endIp`,
    );
  }
}

function checkBoundsForm(c: Checker): void {
  const start = c.ipv4('startIp', true);
  const end = c.ipv4('endIp', true);
  c.string('netmask', { required: true });
  const prefix = c.known('netmask') ? netmaskPrefix(c.inputs.netmask) : undefined;
  if (c.known('netmask') && prefix === undefined) c.fail('netmask', `netmask must be a valid IPv4 netmask other than 0.0.0.0, got "${c.inputs.netmask}"`);
  const pool = c.inputs.ipRangeType === 'AddressPool';
  const gw = c.ipv4('gateway', !pool);
  if (start === undefined || end === undefined) return;
  if (start > end) return c.fail('endIp', `endIp ${formatIpv4(end)} is before startIp ${formatIpv4(start)}`);
  if (prefix === undefined) return;
  const mask = prefixMask(prefix);
  const net = (start & mask) >>> 0;
  const broadcast = (net | (~mask >>> 0)) >>> 0;
  if ((end & mask) >>> 0 !== net) c.fail('endIp', `startIp and endIp are not in the same /${prefix} subnet`);
  if (prefix < 31 && start === net) c.fail('startIp', `startIp ${formatIpv4(start)} is the network address of its subnet`);
  if (prefix < 31 && end === broadcast) c.fail('endIp', `endIp ${formatIpv4(end)} is the broadcast address of its subnet`);
  if (gw !== undefined && !pool) {
    if ((gw & mask) >>> 0 !== net) c.fail('gateway', `gateway ${formatIpv4(gw)} is not in the subnet ${formatIpv4(net)}/${prefix} of the range`);
    else if (gw >= start && gw <= end) c.fail('gateway', `gateway ${formatIpv4(gw)} is inside the range ${formatIpv4(start)}-${formatIpv4(end)}`);
  }
}

export const ipRange: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    const adopting = c.has('adoptUuid');
    c.uuid('l3NetworkUuid', true);
    c.name();
    c.description();
    if (!adopting && !c.has('ipRangeType')) c.inputs.ipRangeType = 'Normal';
    c.string('ipRangeType', { oneOf: ['Normal', 'AddressPool'] });
    if (c.has('networkCidr')) {
      if (c.known('networkCidr')) checkCidrForm(c);
    } else if (!adopting || c.has('startIp') || c.has('endIp')) {
      checkBoundsForm(c);
    }
    c.uuid('adoptUuid', false);
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as IpRangeInputs;
    if (i.adoptUuid) {
      const found = await getIpRange(zs, i.adoptUuid);
      if (!found) throw new Error(`cannot adopt IP range ${i.adoptUuid}: it does not exist`);
      const differs = (['l3NetworkUuid', 'name', 'description', 'networkCidr', 'startIp', 'endIp', 'netmask', 'gateway', 'ipRangeType'] as const).filter(
        (k) => i[k] !== undefined && (found as Record<string, unknown>)[k] !== i[k],
      );
      if (differs.length) {
        const what = differs.map(
          (k) => `${k} is ${JSON.stringify((found as Record<string, unknown>)[k])} on the server but ${JSON.stringify(i[k])} in the program`,
        );
        throw new Error(`cannot adopt IP range ${i.adoptUuid}: ${what.join('; ')} (an IP range cannot change in place; make the program match)`);
      }
      return { id: found.uuid, outs: outputsOf(inputs, found) };
    }
    const opts = once();
    const base = { l3NetworkUuid: i.l3NetworkUuid, name: i.name, description: i.description, ipRangeType: i.ipRangeType, resourceUuid: newUuid() };
    try {
      const inv = i.networkCidr
        ? (await retry(() => zs.addIpRangeByNetworkCidr({ ...base, networkCidr: i.networkCidr!, gateway: i.gateway }, opts))).inventory
        : (await retry(() => zs.addIpRange({ ...base, startIp: i.startIp!, endIp: i.endIp!, netmask: i.netmask!, gateway: i.gateway }, opts))).inventory;
      return { id: inv.uuid, outs: outputsOf(inputs, inv) };
    } catch (e) {
      const bounds = i.networkCidr ?? `${i.startIp}-${i.endIp}`;
      throw explain(e, `adding IP range "${i.name}" (${bounds}) to L3 network ${i.l3NetworkUuid}`);
    }
  },

  async read(ctx, id, props) {
    const inv = await getIpRange(await ctx.zs(), id);
    if (!inv) return { id: '', props: {} };
    return { id, props: outputsOf(props, inv) };
  },

  async update() {
    // Every input replaces an IP range (see diff); nothing is ever updated in place.
    throw new Error('an IP range cannot be changed in place');
  },

  async delete(ctx, id) {
    const zs = await ctx.zs();
    try {
      await retry(() => zs.deleteIpRange({ uuid: id }));
    } catch (e) {
      throw explain(e, `deleting IP range ${id}`);
    }
  },
};
