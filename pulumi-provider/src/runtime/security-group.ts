// SecurityGroup: CreateSecurityGroup, UpdateSecurityGroup and ChangeSecurityGroupState in place, DeleteSecurityGroup
// (its rules and attachments go with it). SecurityGroupRule: one rule, AddSecurityGroupRule / DeleteSecurityGroupRule;
// ZStack cannot change a rule, so any change replaces it. SecurityGroupAttachment (id `securityGroupUuid:l3NetworkUuid`):
// AttachSecurityGroupToL3Network / DetachSecurityGroupFromL3Network.
import type { ZStackClient } from '@zstack-ts/sdk';
import type {
  SecurityGroupAttachmentInputs,
  SecurityGroupInputs,
  SecurityGroupInventory,
  SecurityGroupRuleInputs,
  SecurityGroupRuleInventory,
} from '../types.js';
import { explain, isNotFound, newUuid, once, retry } from './client.js';
import { ResourceInitError, errorMessage, outputsOf, type Ctx, type Handler } from './common.js';
import { Checker, diffProps, parseCidr, type DiffRule, type Props } from './util.js';

const GROUP_RULE: DiffRule = { replace: [], update: ['name', 'description', 'state'] };
const RULE_RULE: DiffRule = { replace: ['securityGroupUuid', 'type', 'protocol', 'startPort', 'endPort', 'allowedCidr'], update: [] };
const ATTACHMENT_RULE: DiffRule = { replace: ['securityGroupUuid', 'l3NetworkUuid'], update: [] };
const STATES = ['Enabled', 'Disabled'] as const;
const WORLD_OPEN_CIDR = '0.0.0.0/0';

export async function getSecurityGroup(zs: ZStackClient, uuid: string): Promise<SecurityGroupInventory | undefined> {
  return (await retry(() => zs.querySecurityGroup({ q: [`uuid=${uuid}`] }))).inventories?.[0];
}

async function getRule(zs: ZStackClient, uuid: string): Promise<SecurityGroupRuleInventory | undefined> {
  return (await retry(() => zs.querySecurityGroupRule({ q: [`uuid=${uuid}`] }))).inventories?.[0];
}

/** Name, description and state as declared (only what differs from the server is sent). */
async function applyGroup(zs: ZStackClient, inv: SecurityGroupInventory, want: SecurityGroupInputs): Promise<SecurityGroupInventory> {
  const set: Record<string, string> = {};
  if (want.name !== undefined && want.name !== inv.name) set.name = want.name;
  if (want.description !== undefined && want.description !== inv.description) set.description = want.description;
  try {
    if (Object.keys(set).length) inv = (await retry(() => zs.updateSecurityGroup({ uuid: inv.uuid, ...set }))).inventory;
    if (want.state && want.state !== inv.state) {
      const stateEvent = want.state === 'Enabled' ? 'enable' : 'disable';
      inv = (await retry(() => zs.changeSecurityGroupState({ uuid: inv.uuid, stateEvent }))).inventory;
    }
  } catch (e) {
    throw explain(e, `updating security group ${inv.uuid}`);
  }
  return inv;
}

/** The group's outputs: its rules and attached networks are managed by their own resources, so only read here. */
function groupOutputs(inputs: Props, inv: SecurityGroupInventory): Props {
  return outputsOf(inputs, inv);
}

export const securityGroup: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.name();
    c.description();
    c.string('state', { oneOf: STATES });
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, GROUP_RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as SecurityGroupInputs;
    let inv: SecurityGroupInventory;
    const opts = once();
    try {
      inv = (await retry(() => zs.createSecurityGroup({ name: i.name, description: i.description, resourceUuid: newUuid() }, opts))).inventory;
    } catch (e) {
      throw explain(e, `creating security group "${i.name}"`);
    }
    try {
      inv = await applyGroup(zs, inv, i);
    } catch (e) {
      throw new ResourceInitError(errorMessage(e), inv.uuid, groupOutputs(inputs, inv));
    }
    return { id: inv.uuid, outs: groupOutputs(inputs, inv) };
  },

  async read(ctx, id, props) {
    const inv = await getSecurityGroup(await ctx.zs(), id);
    if (!inv) return { id: '', props: {} };
    return { id, props: groupOutputs(props, inv) };
  },

  async update(ctx, id, _olds, news) {
    const zs = await ctx.zs();
    const inv = await getSecurityGroup(zs, id);
    if (!inv) throw new Error(`security group ${id} no longer exists; run \`pulumi refresh\` to drop it from the state`);
    return { outs: groupOutputs(news, await applyGroup(zs, inv, news as unknown as SecurityGroupInputs)) };
  },

  async delete(ctx, id) {
    const zs = await ctx.zs();
    try {
      await retry(() => zs.deleteSecurityGroup({ uuid: id }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw explain(e, `deleting security group ${id}`);
    }
  },
};

// ---------------------------------------------------------------------------------------------------------------

const sameRule = (r: SecurityGroupRuleInventory, want: SecurityGroupRuleInputs) =>
  r.type === want.type &&
  r.protocol === want.protocol &&
  r.startPort === want.startPort &&
  r.endPort === (want.endPort ?? want.startPort) &&
  r.allowedCidr === (want.allowedCidr ?? WORLD_OPEN_CIDR);

export const securityGroupRule: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.uuid('securityGroupUuid', true);
    c.string('type', { required: true, oneOf: ['Ingress', 'Egress'] });
    const protocol = c.string('protocol', { required: true, oneOf: ['TCP', 'UDP', 'ICMP'] });
    if (!c.has('startPort')) c.fail('startPort', 'startPort is required');
    const icmp = protocol === 'ICMP';
    // ICMP rules carry the ICMP type in startPort and the code in endPort.
    const start = icmp ? c.int('startPort', -1, 255) : c.int('startPort', 0, 65535);
    // The server's default: endPort = startPort (ICMP "any" is startPort -1).
    if (!c.has('endPort') && start !== undefined) c.inputs.endPort = start;
    const end = icmp ? c.int('endPort', -1, 3) : c.int('endPort', 0, 65535);
    // The server keeps a rule's ports as (min, max): a reversed pair would come back swapped and replace it at every run.
    if (start !== undefined && end !== undefined && end < start) {
      c.fail('endPort', `endPort ${end} is below startPort ${start}: ZStack stores the smaller as startPort, give them in that order`);
    }
    if (!c.has('allowedCidr')) c.inputs.allowedCidr = WORLD_OPEN_CIDR;
    const cidr = c.string('allowedCidr');
    if (cidr !== undefined) {
      const parsed = parseCidr(cidr);
      if (!parsed) c.fail('allowedCidr', `allowedCidr must be an IPv4 CIDR such as 10.0.0.0/8, got "${cidr}"`);
      else if (parsed.canonical !== cidr) c.fail('allowedCidr', `allowedCidr "${cidr}" has host bits set: write ${parsed.canonical}`);
    }
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, RULE_RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as SecurityGroupRuleInputs;
    const what = `adding ${i.type} ${i.protocol} rule ${i.startPort}-${i.endPort ?? i.startPort} from ${i.allowedCidr ?? WORLD_OPEN_CIDR} to security group ${i.securityGroupUuid}`;
    // AddSecurityGroupRule answers with the group: the new rule is the matching one that was not there before.
    let before: Set<string>;
    let inv: SecurityGroupInventory;
    try {
      const group = await getSecurityGroup(zs, i.securityGroupUuid);
      if (!group) throw new Error(`security group ${i.securityGroupUuid} does not exist`);
      before = new Set(group.rules.map((r) => r.uuid));
      const rule = { type: i.type, protocol: i.protocol, startPort: i.startPort, endPort: i.endPort, allowedCidr: i.allowedCidr };
      inv = (await retry(() => zs.addSecurityGroupRule({ securityGroupUuid: i.securityGroupUuid, rules: [rule] }, once()))).inventory;
    } catch (e) {
      throw explain(e, what);
    }
    const added = inv.rules.filter((r) => !before.has(r.uuid) && sameRule(r, i)).pop();
    if (!added) throw new Error(`${what}: the server answered without the new rule`);
    return { id: added.uuid, outs: outputsOf(inputs, added) };
  },

  async read(ctx, id, props) {
    const rule = await getRule(await ctx.zs(), id);
    if (!rule) return { id: '', props: {} };
    return { id, props: outputsOf(props, rule) };
  },

  async update() {
    throw new Error('a security group rule cannot be changed in place');
  },

  async delete(ctx, id) {
    const zs = await ctx.zs();
    try {
      // Unknown rules (deleted with their group) are ignored by the server.
      await retry(() => zs.deleteSecurityGroupRule({ ruleUuids: [id] }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw explain(e, `deleting security group rule ${id}`);
    }
  },
};

// ---------------------------------------------------------------------------------------------------------------

function splitAttachmentId(id: string, props: Props): [string, string] {
  const [sg, l3] = id.split(':');
  return [(props.securityGroupUuid as string | undefined) ?? sg, (props.l3NetworkUuid as string | undefined) ?? l3];
}

export const securityGroupAttachment: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.uuid('securityGroupUuid', true);
    c.uuid('l3NetworkUuid', true);
    return c.result();
  },

  diff(_id, olds, news) {
    return diffProps(olds, news, ATTACHMENT_RULE);
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as SecurityGroupAttachmentInputs;
    try {
      await retry(() => zs.attachSecurityGroupToL3Network({ securityGroupUuid: i.securityGroupUuid, l3NetworkUuid: i.l3NetworkUuid }, once()));
    } catch (e) {
      throw explain(e, `attaching security group ${i.securityGroupUuid} to L3 network ${i.l3NetworkUuid}`);
    }
    return { id: `${i.securityGroupUuid}:${i.l3NetworkUuid}`, outs: outputsOf(inputs, {}) };
  },

  async read(ctx, id, props) {
    const [securityGroupUuid, l3NetworkUuid] = splitAttachmentId(id, props);
    const group = await getSecurityGroup(await ctx.zs(), securityGroupUuid);
    if (!group || !group.attachedL3NetworkUuids.includes(l3NetworkUuid)) return { id: '', props: {} };
    return { id, props: outputsOf({ ...props, securityGroupUuid, l3NetworkUuid }, {}) };
  },

  async update() {
    throw new Error('a security group attachment cannot be changed in place');
  },

  async delete(ctx, id, props) {
    const [securityGroupUuid, l3NetworkUuid] = splitAttachmentId(id, props);
    const zs = await ctx.zs();
    // Already gone with its group or its network: nothing to detach (the server refuses a detach of what is not attached).
    const group = await getSecurityGroup(zs, securityGroupUuid);
    if (!group || !group.attachedL3NetworkUuids.includes(l3NetworkUuid)) return;
    try {
      await retry(() => zs.detachSecurityGroupFromL3Network({ securityGroupUuid, l3NetworkUuid }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw explain(e, `detaching security group ${securityGroupUuid} from L3 network ${l3NetworkUuid}`);
    }
  },
};
