// "Is this management node alone?" — asked before a node settles work it finds half done (a host left Connecting,
// an image left Downloading, VMs' recorded states after a crash): only when no other node is alive can nothing be
// half-way through it. A node counts as alive while its heartbeat is younger than three heartbeat intervals.
import { hostname } from 'node:os';
import { managementNodes } from '../db/schema/index.js';
import type { DomainContext } from './domain.js';

const staleAfterMs = (ctx: DomainContext) => 3 * ctx.globalConfig.getMs('managementServer', 'node.heartbeatInterval');

/** True when no other management node is alive (heartbeats as the database clock sees them). */
export async function noOtherManagementNode(ctx: DomainContext): Promise<boolean> {
  const live = await ctx.jobs.liveNodes(staleAfterMs(ctx));
  return live.every((n) => n === ctx.nodeUuid);
}

/**
 * At start (before serving): no other management node is alive. A node recorded on this machine with the port this
 * one is configured to listen on is a predecessor that died (the port is checked free before the server starts), even
 * when its heartbeat is still recent.
 */
export async function aloneAtBoot(ctx: DomainContext): Promise<boolean> {
  const staleBefore = new Date(Date.now() - staleAfterMs(ctx));
  const nodes = await ctx.db.select().from(managementNodes);
  const port = ctx.options.port ?? 0;
  return nodes.every((n) => n.uuid === ctx.nodeUuid || n.heartBeat < staleBefore || (port !== 0 && n.hostName === hostname() && n.port === port));
}
