// The VM system tags 1.1 acts on (upstream's VmSystemTags and VmInstanceManagerImpl's validators): `hostname::` (the
// guest's DHCP hostname; a valid domain name, unique among the VMs of the default L3 network) and
// `staticIp::<l3>::<ip>` (the NIC's address on that L3, taken at creation), and the APIs that set and delete them.
import { and, eq, like, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { argErr, opErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { TagService, type TagTokens } from '../core/tags.js';
import { rows, type Tx } from '../db/index.js';
import { l3Networks, systemTags, usedIps, vmNics } from '../db/schema/index.js';
import { ipToLong, isIpv4 } from '../network/index.js';
import type { VmService } from './service.js';
import { notInStateErr } from './states.js';

export const HOSTNAME = 'hostname::{hostname}';
export const STATIC_IP = 'staticIp::{l3NetworkUuid}::{staticIp}';
const VM = 'VmInstanceVO';

/** Upstream's DomainValidator (local names allowed): dot-separated labels of letters, digits and inner hyphens. */
function isDomainName(name: string): boolean {
  if (name.length > 253) return false;
  return name.split('.').every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

/** The static IPs a message's system tags ask for, by L3 network. */
export function staticIpsOf(tags: TagService, systemTagsOfMsg: readonly string[] | undefined): Map<string, string> {
  return new Map(tags.find(STATIC_IP, systemTagsOfMsg).map((t) => [t.l3NetworkUuid, t.staticIp]));
}

/** The hostname a VM's `hostname::` system tag gives it, if any. */
export async function taggedHostname(db: Tx, vmUuid: string): Promise<string | undefined> {
  const [t] = await db
    .select({ tag: systemTags.tag })
    .from(systemTags)
    .where(and(eq(systemTags.resourceUuid, vmUuid), like(systemTags.tag, 'hostname::%')));
  return t?.tag.slice('hostname::'.length);
}

export function registerVmTags(app: DomainContext<'networks', 'vms'>, vms: VmService): void {
  const { db, tags } = app;

  const hostnameTaken = async (tag: string, l3Uuid: string | undefined, vmUuid?: string) => {
    if (!l3Uuid) return;
    const same = await rows<{ resource_uuid: string }>(
      db,
      sql`SELECT t.resource_uuid FROM system_tags t JOIN vm_nics n ON n.vm_instance_uuid = t.resource_uuid
           WHERE n.l3_network_uuid = ${l3Uuid} AND t.tag = ${tag} AND t.resource_uuid IS DISTINCT FROM ${vmUuid ?? null} LIMIT 1`,
    );
    if (same.length) {
      throw argErr(
        `conflict hostname in system tag[${tag}]; there has been a VM[uuid:${same[0].resource_uuid}] having the hostname on L3 network[uuid:${l3Uuid}]`,
      );
    }
  };

  tags.define({
    resourceType: VM,
    format: HOSTNAME,
    async validate({ hostname }, { tag, resourceUuid, msg }) {
      if (!isDomainName(hostname)) throw argErr(`hostname[${hostname}] specified in system tag[${tag}] is not a valid domain name`);
      if (msg) {
        const count = tags.find(HOSTNAME, msg.systemTags as string[]).length;
        if (count > 1) throw argErr(`only one hostname system tag is allowed, but ${count} got`);
        const l3s = msg.l3NetworkUuids as string[] | undefined;
        await hostnameTaken(tag, (msg.defaultL3NetworkUuid as string | undefined) ?? l3s?.[0]);
      } else if (resourceUuid) {
        const vm = await vms.require(resourceUuid);
        await hostnameTaken(tag, vm.defaultL3NetworkUuid ?? undefined, resourceUuid);
      }
    },
  });

  const checkStaticIp = async ({ l3NetworkUuid, staticIp }: TagTokens, tag: string) => {
    const [l3] = await db.select({ uuid: l3Networks.uuid }).from(l3Networks).where(eq(l3Networks.uuid, l3NetworkUuid));
    if (!l3) throw argErr(`L3 network[uuid:${l3NetworkUuid}] not found. Please correct your system tag[${tag}] of static IP`);
    if (!isIpv4(staticIp)) throw argErr(`${staticIp} is not a valid IPv4 address. Please correct your system tag[${tag}] of static IP`);
    const [used] = await db
      .select({ uuid: usedIps.uuid })
      .from(usedIps)
      .where(and(eq(usedIps.l3NetworkUuid, l3NetworkUuid), eq(usedIps.ipInLong, ipToLong(staticIp))));
    if (used) throw opErr(`IP[${staticIp}] is not available on the L3 network[uuid:${l3NetworkUuid}]`);
  };

  tags.define({
    resourceType: VM,
    format: STATIC_IP,
    async validate(tokens, { tag }) {
      await checkStaticIp(tokens, tag);
    },
  });

  /** Writes `tag` as the VM's only tag of `format`'s kind matched by `pattern` (created or replaced). */
  const replaceTag = async (vmUuid: string, pattern: string, tag: string) => {
    const [old] = await db
      .select()
      .from(systemTags)
      .where(and(eq(systemTags.resourceUuid, vmUuid), like(systemTags.tag, pattern)));
    if (old) await db.update(systemTags).set({ tag, lastOpDate: new Date() }).where(eq(systemTags.uuid, old.uuid));
    else await tags.create(db, { uuid: vmUuid, type: VM }, { systemTags: [tag] });
  };
  const escapeLike = (s: string) => s.replace(/[\\%_]/g, '\\$&');
  const staticIpPattern = (l3Uuid: string) => `staticIp::${escapeLike(l3Uuid)}::%`;

  const nicOn = async (vmUuid: string, l3Uuid: string) => {
    const [nic] = await db
      .select()
      .from(vmNics)
      .where(and(eq(vmNics.vmInstanceUuid, vmUuid), eq(vmNics.l3NetworkUuid, l3Uuid)));
    if (!nic) throw argErr(`the VM[uuid:${vmUuid}] has no nic on the L3 network[uuid:${l3Uuid}]`);
    return nic;
  };

  app.addHandlers(
    defineHandlers({
      SetVmHostname: {
        async check(msg) {
          await vms.require(msg.uuid);
          await tags.validateSystemTags(VM, [TagService.instantiate(HOSTNAME, { hostname: msg.hostname })], { resourceUuid: msg.uuid });
        },
        async run(msg) {
          await vms.withVm(msg.uuid, () => replaceTag(msg.uuid, 'hostname::%', TagService.instantiate(HOSTNAME, { hostname: msg.hostname })));
          return {};
        },
      },
      DeleteVmHostname: {
        async run(msg) {
          await db.delete(systemTags).where(and(eq(systemTags.resourceUuid, msg.uuid), like(systemTags.tag, 'hostname::%')));
          return {};
        },
      },
      SetVmStaticIp: {
        async check(msg) {
          if (!isIpv4(msg.ip)) throw argErr(`${msg.ip} is not a valid IPv4 address`);
          await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid');
          await nicOn(msg.vmInstanceUuid, msg.l3NetworkUuid);
        },
        async run(msg) {
          const tag = TagService.instantiate(STATIC_IP, { l3NetworkUuid: msg.l3NetworkUuid, staticIp: msg.ip });
          await vms.withVm(
            msg.vmInstanceUuid,
            async (vm) => {
              const nic = await nicOn(vm.uuid, msg.l3NetworkUuid);
              if (nic.ip !== msg.ip) {
                // Upstream's changeVmIp: the new address is taken, the NIC moved to it, the old one returned.
                if (vm.state !== 'Stopped') throw notInStateErr(vm.state, 'SetVmStaticIp', ['Stopped']);
                await db.transaction(async (tx) => {
                  const ip = await app.use('networks').allocateIp(tx, msg.l3NetworkUuid, {
                    staticIp: msg.ip,
                    usedFor: vm.type === 'ApplianceVm' ? 'ApplianceVm' : 'UserVm',
                    vmNicUuid: nic.uuid,
                  });
                  await tx
                    .update(vmNics)
                    .set({ usedIpUuid: ip.usedIpUuid, ip: ip.ip, netmask: ip.netmask, gateway: ip.gateway, lastOpDate: new Date() })
                    .where(eq(vmNics.uuid, nic.uuid));
                  if (nic.usedIpUuid) await app.use('networks').releaseIp(tx, nic.usedIpUuid);
                });
              }
              await replaceTag(vm.uuid, staticIpPattern(msg.l3NetworkUuid), tag);
            },
            'vmInstanceUuid',
          );
          return {};
        },
      },
      DeleteVmStaticIp: {
        async check(msg) {
          if (!msg.l3NetworkUuid) throw argErr('field[l3NetworkUuid] is mandatory, can not be null');
          await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid');
          await nicOn(msg.vmInstanceUuid, msg.l3NetworkUuid);
        },
        async run(msg) {
          await db
            .delete(systemTags)
            .where(and(eq(systemTags.resourceUuid, msg.vmInstanceUuid), like(systemTags.tag, staticIpPattern(msg.l3NetworkUuid ?? ''))));
          return {};
        },
      },
    }),
  );

  // Upstream's afterDeleteL3Network: static IP tags naming a deleted L3 network go with it.
  app.cascade.register({
    kind: 'vmStaticIpTag',
    parents: {
      l3: async (l3Uuids) => {
        const found = await rows<{ uuid: string }>(
          db,
          sql`SELECT uuid FROM system_tags WHERE resource_type = ${VM} AND tag LIKE 'staticIp::%' AND split_part(tag, '::', 2) = ANY(${sql.param(l3Uuids)}::text[])`,
        );
        return found.map((r) => r.uuid);
      },
    },
    delete: async (uuids) => void (await db.delete(systemTags).where(sql`${systemTags.uuid} = ANY(${sql.param(uuids)}::text[])`)),
  });
}
