// L2Network: CreateL2NoVlanNetwork / CreateL2VlanNetwork, cluster attachments managed in place, DeleteL2Network.
// ZStack has no UpdateL2Network, so every other input replaces the network.
import type { ZStackClient } from '@zstack-ts/sdk';
import type { L2NetworkInputs, L2NetworkInventory } from '../types.js';
import { explain, once, retry, newUuid } from './client.js';
import { ResourceInitError, errorMessage, outputsOf, type Ctx, type Handler } from './common.js';
import { Checker, UUID_RE, diffProps, type DiffRule, type Props } from './util.js';

const RULE: DiffRule = {
  replace: ['name', 'description', 'zoneUuid', 'physicalInterface', 'type', 'vlan', 'vSwitchType', 'adoptUuid'],
  update: ['clusterUuids'],
  sets: ['clusterUuids'],
};

export async function getL2(zs: ZStackClient, uuid: string): Promise<L2NetworkInventory | undefined> {
  const reply = await retry(() => zs.queryL2Network({ q: [`uuid=${uuid}`] }));
  return reply.inventories?.[0];
}

function outputs(inputs: Props, inv: L2NetworkInventory): Props {
  const managed = inputs.clusterUuids !== undefined;
  return outputsOf(inputs, inv, managed ? { clusterUuids: [...inv.attachedClusterUuids].sort() } : {});
}

/** Attaches/detaches clusters until the L2 network is attached to exactly `wanted` (when given). */
async function reconcileClusters(zs: ZStackClient, inv: L2NetworkInventory, wanted: string[] | undefined): Promise<L2NetworkInventory> {
  if (!wanted) return inv;
  const have = inv.attachedClusterUuids;
  for (const clusterUuid of have.filter((c) => !wanted.includes(c))) {
    inv = (await retry(() => zs.detachL2NetworkFromCluster({ l2NetworkUuid: inv.uuid, clusterUuid }), {})).inventory;
  }
  for (const clusterUuid of wanted.filter((c) => !have.includes(c))) {
    const opts = once();
    try {
      inv = (await retry(() => zs.attachL2NetworkToCluster({ l2NetworkUuid: inv.uuid, clusterUuid }, opts))).inventory;
    } catch (e) {
      throw explain(e, `attaching L2 network ${inv.uuid} to cluster ${clusterUuid}`);
    }
  }
  return inv;
}

export const l2Network: Handler = {
  check(_olds, news) {
    const c = new Checker(news);
    c.name();
    c.description();
    c.uuid('zoneUuid', true);
    c.string('physicalInterface', { required: true, max: 1024 });
    const vlan = c.int('vlan', 1, 4094);
    // The type follows from vlan when not given (unless vlan is not known yet, in preview).
    if (!c.has('type') && !(c.has('vlan') && !c.known('vlan'))) c.inputs.type = c.has('vlan') ? 'L2VlanNetwork' : 'L2NoVlanNetwork';
    const type = c.string('type', { oneOf: ['L2NoVlanNetwork', 'L2VlanNetwork'] });
    if (type === 'L2VlanNetwork' && !c.has('vlan')) c.fail('vlan', 'vlan is required for an L2VlanNetwork');
    if (type === 'L2NoVlanNetwork' && vlan !== undefined) c.fail('vlan', 'vlan is only for an L2VlanNetwork; leave it out or set type to L2VlanNetwork');
    if (!c.has('vSwitchType')) c.inputs.vSwitchType = 'LinuxBridge';
    c.string('vSwitchType', { oneOf: ['LinuxBridge'] });
    c.stringList('clusterUuids', { item: (s) => (UUID_RE.test(s) ? undefined : `"${s}" is not a ZStack uuid`), sort: true });
    c.uuid('adoptUuid', false);
    return c.result();
  },

  diff(_id, olds, news) {
    const d = diffProps(olds, news, RULE);
    // Two flat L2 networks on one interface cannot share a cluster: the old one goes first when clusters are managed.
    const clusters = news.clusterUuids;
    return { ...d, deleteBeforeReplace: d.replaces.length > 0 && Array.isArray(clusters) && clusters.length > 0 };
  },

  async create(ctx: Ctx, inputs) {
    const zs = await ctx.zs();
    const i = inputs as unknown as L2NetworkInputs;
    let inv: L2NetworkInventory;
    if (i.adoptUuid) {
      const found = await getL2(zs, i.adoptUuid);
      if (!found) throw new Error(`cannot adopt L2 network ${i.adoptUuid}: it does not exist`);
      const differs = (['name', 'zoneUuid', 'physicalInterface', 'type', 'vlan', 'vSwitchType', 'description'] as const).filter(
        (k) => i[k] !== undefined && (found as Record<string, unknown>)[k] !== i[k],
      );
      if (differs.length) {
        const what = differs.map(
          (k) => `${k} is ${JSON.stringify((found as Record<string, unknown>)[k])} on the server but ${JSON.stringify(i[k])} in the program`,
        );
        throw new Error(`cannot adopt L2 network ${i.adoptUuid}: ${what.join('; ')} (ZStack cannot change an L2 network in place; make the program match)`);
      }
      inv = found;
    } else {
      const common = {
        name: i.name,
        description: i.description,
        zoneUuid: i.zoneUuid,
        physicalInterface: i.physicalInterface,
        vSwitchType: i.vSwitchType,
        resourceUuid: newUuid(),
      };
      const opts = once();
      try {
        inv = (
          await retry(() => (i.type === 'L2VlanNetwork' ? zs.createL2VlanNetwork({ ...common, vlan: i.vlan! }, opts) : zs.createL2NoVlanNetwork(common, opts)))
        ).inventory;
      } catch (e) {
        throw explain(e, `creating L2 network "${i.name}"`);
      }
    }
    try {
      inv = await reconcileClusters(zs, inv, i.clusterUuids);
    } catch (e) {
      throw new ResourceInitError(errorMessage(e), inv.uuid, outputs(inputs, inv));
    }
    return { id: inv.uuid, outs: outputs(inputs, inv) };
  },

  async read(ctx, id, props) {
    const inv = await getL2(await ctx.zs(), id);
    if (!inv) return { id: '', props: {} };
    return { id, props: outputs(props, inv) };
  },

  async update(ctx, id, _olds, news) {
    const zs = await ctx.zs();
    const inv = await getL2(zs, id);
    if (!inv) throw new Error(`L2 network ${id} no longer exists; run \`pulumi refresh\` to drop it from the state`);
    return { outs: outputs(news, await reconcileClusters(zs, inv, news.clusterUuids as string[] | undefined)) };
  },

  async delete(ctx, id) {
    const zs = await ctx.zs();
    try {
      // Deleting an unknown uuid succeeds: a network already gone is not an error.
      await retry(() => zs.deleteL2Network({ uuid: id }));
    } catch (e) {
      throw explain(e, `deleting L2 network ${id}`);
    }
  },
};
