// The tag APIs (upstream's TagManagerImpl/TagApiInterceptor): CreateSystemTag, CreateUserTag, UpdateSystemTag,
// DeleteTag, QuerySystemTag, QueryUserTag, and the system tags 1.1 knows that nothing here acts on (accepted and
// stored, as 1.1 stores them). The mechanism itself is core/tags.ts.
import { eq } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import type { CallContext } from '../core/context.js';
import { formatDate } from '../core/dates.js';
import { argErr, err, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { rows } from '../db/index.js';
import { systemTags, userTags } from '../db/schema/index.js';
import { sql } from 'drizzle-orm';

type SystemTagRow = typeof systemTags.$inferSelect;
type UserTagRow = typeof userTags.$inferSelect;

export function systemTagInventory(r: SystemTagRow) {
  return {
    uuid: r.uuid,
    resourceUuid: r.resourceUuid,
    resourceType: r.resourceType,
    tag: r.tag,
    type: 'System' as const,
    inherent: r.inherent,
    createDate: formatDate(r.createDate)!,
    lastOpDate: formatDate(r.lastOpDate)!,
  };
}

export function userTagInventory(r: UserTagRow) {
  return {
    uuid: r.uuid,
    resourceUuid: r.resourceUuid,
    resourceType: r.resourceType,
    tag: r.tag,
    type: 'User' as const,
    createDate: formatDate(r.createDate)!,
    lastOpDate: formatDate(r.lastOpDate)!,
  };
}

// A Normal account sees the tags of the resources it may see.
const systemTagDescriptor: InventoryDescriptor<SystemTagRow> = {
  name: 'SystemTagInventory',
  table: systemTags,
  fields: fieldsFromTable(systemTags),
  ownerKey: 'resourceUuid',
  defaultSort: 'createDate',
  toInventories: async (r) => r.map(systemTagInventory),
};

const userTagDescriptor: InventoryDescriptor<UserTagRow> = {
  name: 'UserTagInventory',
  table: userTags,
  fields: fieldsFromTable(userTags),
  ownerKey: 'resourceUuid',
  defaultSort: 'createDate',
  toInventories: async (r) => r.map(userTagInventory),
};

/** System tags of 1.1 that nothing here acts on: accepted and stored (upstream's `*SystemTags` classes). */
const KNOWN_1_1: Array<[string, string[]]> = [
  ['ZoneVO', ['host::reservedCpu::{capacity}', 'host::reservedMemory::{capacity}']],
  ['ClusterVO', ['host::reservedCpu::{capacity}', 'host::reservedMemory::{capacity}']],
  [
    'HostVO',
    [
      'reservedCpu::{capacity}',
      'reservedMemory::{capacity}',
      'capability:liveSnapshot',
      'capability:virtio-scsi',
      'os::distribution::{distribution}',
      'os::release::{release}',
      'os::version::{version}',
      'qemu-img::version::{version}',
      'libvirt::version::{version}',
      'hvm::{flag}',
    ],
  ],
  ['L2NetworkVO', ['kvm::bridge::{name}']],
  ['L3NetworkVO', ['flatNetwork::DhcpServer::{ip}::ipUuid::{ipUuid}']],
  [
    'PrimaryStorageVO',
    [
      'capability:snapshot',
      'primaryStorage::allocator::uuid::{uuid}',
      'primaryStorage::allocator::userTag::{tag}',
      'primaryStorage::allocator::userTag::{tag}::required',
      'capability::snapshot::hypervisor::{hypervisorType}',
    ],
  ],
  ['InstanceOfferingVO', ['commandsParallelismDegree::{parallelismDegree}', 'guestL3Network::{guestL3NetworkUuid}']],
  [
    'VmInstanceVO',
    [
      'windows::virtioVolume',
      'userdata::{userdata}',
      'sshkey::{sshkey}',
      'rootPassword::{rootPassword}',
      'iso::{iso}',
      'bootOrder::{bootOrder}',
      'pendingCapacityChange::cpuNum::{cpuNum}::cpuSpeed::{cpuSpeed}::memory::{memory}',
      'commandsParallelismDegree::{parallelismDegree}',
      'role::DHCP',
      'role::DNS',
      'role::SNAT',
      'role::EIP',
      'role::PortForwarding',
      'role::LoadBalancer',
      'dedicatedRole',
    ],
  ],
];

export const tagModule = defineDomain({ name: 'tag', register });

function register(app: DomainContext): void {
  const { db, tags } = app;
  for (const [resourceType, formats] of KNOWN_1_1) for (const format of formats) tags.define({ resourceType, format });
  app.addInventory(systemTagDescriptor);
  app.addInventory(userTagDescriptor);
  tags.registerConditions();
  // After every domain registered its inventories: their tables are the tagged ones.
  app.onBoot(() => tags.installDeletionTriggers());

  /** A Normal account tags (and untags) only what it owns (upstream's checkAccount on resourceUuid). */
  const checkOwner = async (call: CallContext, resourceUuid: string) => {
    const s = call.session;
    if (s && s.accountType !== 'SystemAdmin') await app.permissions.checkResources(s.accountUuid, [resourceUuid], []);
  };
  const checkResource = async (msg: { resourceType: string; resourceUuid: string }, call: CallContext) => {
    const table = tags.tableOf(msg.resourceType);
    if (!table) throw argErr(`no resource type[${msg.resourceType}] found in tag system; known: ${tags.resourceTypes().join(', ')}`);
    await checkOwner(call, msg.resourceUuid);
    const found = await rows(db, sql`SELECT 1 FROM ${table} WHERE uuid = ${msg.resourceUuid}`);
    if (!found.length) throw notFound(msg.resourceType, msg.resourceUuid, 'resourceUuid');
  };
  const loadSystemTag = async (uuid: string) => {
    const [t] = await db.select().from(systemTags).where(eq(systemTags.uuid, uuid));
    if (!t) throw notFound('SystemTagVO', uuid);
    return t;
  };

  app.addHandlers(
    defineHandlers({
      CreateSystemTag: {
        async check(msg, call) {
          await checkResource(msg, call);
          await tags.validateSystemTags(msg.resourceType, [msg.tag], { resourceUuid: msg.resourceUuid });
        },
        async run(msg) {
          const {
            systemTags: [t],
          } = await tags.create(db, { uuid: msg.resourceUuid, type: msg.resourceType }, { systemTags: [msg.tag] });
          // Already there: upstream answers without an inventory; ours is the existing tag.
          const existing = t ?? (await db.select().from(systemTags).where(eq(systemTags.resourceUuid, msg.resourceUuid))).find((x) => x.tag === msg.tag)!;
          return { inventory: systemTagInventory(existing as SystemTagRow) };
        },
      },
      CreateUserTag: {
        check: (msg, call) => checkResource(msg, call),
        async run(msg) {
          const {
            userTags: [t],
          } = await tags.create(db, { uuid: msg.resourceUuid, type: msg.resourceType }, { userTags: [msg.tag] });
          const existing = t ?? (await db.select().from(userTags).where(eq(userTags.resourceUuid, msg.resourceUuid))).find((x) => x.tag === msg.tag)!;
          return { inventory: userTagInventory(existing as UserTagRow) };
        },
      },
      UpdateSystemTag: {
        async check(msg, call) {
          const t = await loadSystemTag(msg.uuid);
          await checkOwner(call, t.resourceUuid);
          await tags.validateSystemTags(t.resourceType, [msg.tag], { resourceUuid: t.resourceUuid });
        },
        async run(msg) {
          const [t] = await db.update(systemTags).set({ tag: msg.tag, lastOpDate: new Date() }).where(eq(systemTags.uuid, msg.uuid)).returning();
          if (!t) throw notFound('SystemTagVO', msg.uuid);
          return { inventory: systemTagInventory(t) };
        },
      },
      DeleteTag: {
        async check(msg, call) {
          const [s] = await db.select().from(systemTags).where(eq(systemTags.uuid, msg.uuid));
          if (s?.inherent) throw err('SYS.1006', `tag[uuid:${msg.uuid}] is an inherent system tag, can not be removed`);
          const [u] = s ? [] : await db.select().from(userTags).where(eq(userTags.uuid, msg.uuid));
          const resourceUuid = s?.resourceUuid ?? u?.resourceUuid;
          if (resourceUuid) await checkOwner(call, resourceUuid);
        },
        async run(msg) {
          await db.delete(systemTags).where(eq(systemTags.uuid, msg.uuid));
          await db.delete(userTags).where(eq(userTags.uuid, msg.uuid));
          return {};
        },
      },
    }),
  );
}
