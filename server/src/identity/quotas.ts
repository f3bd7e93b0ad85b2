// Quotas of Normal accounts (upstream's QuotaVO): a limit per account and name, created with the account from the
// defaults below; usage is counted from the resources the account owns (account_resource_refs). Creating calls are
// checked at allocation time, serialized per account: the account's lock is held from the check until the new
// resource is recorded as the account's, so concurrent creations cannot overshoot (core/permissions.ts).
import { sql } from 'drizzle-orm';
import { rows, type Db, type Tx } from '../db/index.js';
import { ApiError, errorCode } from '../core/errors.js';

/** Upstream 1.1's defaults. */
export const QUOTA_DEFAULTS: Record<string, number> = {
  'vm.num': 20,
  'vm.cpuNum': 80,
  'vm.memorySize': 85899345920,
  'volume.data.num': 40,
  'volume.capacity': 10995116277760,
  'l3.num': 20,
  'image.num': 20,
};

/** What the account uses, per quota name. */
export async function quotaUsage(db: Tx, accountUuid: string): Promise<Record<string, number>> {
  const [u] = await rows<Record<string, string | number | null>>(
    db,
    sql`WITH mine AS (SELECT resource_uuid FROM account_resource_refs WHERE account_uuid = ${accountUuid})
        SELECT
          (SELECT count(*) FROM vm_instances WHERE uuid IN (SELECT resource_uuid FROM mine) AND state <> 'Destroyed') AS vm_num,
          (SELECT coalesce(sum(cpu_num), 0) FROM vm_instances WHERE uuid IN (SELECT resource_uuid FROM mine) AND state <> 'Destroyed') AS vm_cpu,
          (SELECT coalesce(sum(memory_size), 0) FROM vm_instances WHERE uuid IN (SELECT resource_uuid FROM mine) AND state <> 'Destroyed') AS vm_memory,
          (SELECT count(*) FROM volumes WHERE uuid IN (SELECT resource_uuid FROM mine) AND type = 'Data') AS data_num,
          (SELECT coalesce(sum(size), 0) FROM volumes WHERE uuid IN (SELECT resource_uuid FROM mine)) AS capacity,
          (SELECT count(*) FROM l3_networks WHERE uuid IN (SELECT resource_uuid FROM mine)) AS l3_num,
          (SELECT count(*) FROM images WHERE uuid IN (SELECT resource_uuid FROM mine)) AS image_num`,
  );
  return {
    'vm.num': Number(u.vm_num),
    'vm.cpuNum': Number(u.vm_cpu),
    'vm.memorySize': Number(u.vm_memory),
    'volume.data.num': Number(u.data_num),
    'volume.capacity': Number(u.capacity),
    'l3.num': Number(u.l3_num),
    'image.num': Number(u.image_num),
  };
}

/** The account's limits (defaults for names without a row). */
export async function quotaLimits(db: Tx, accountUuid: string): Promise<Record<string, number>> {
  const found = await rows<{ name: string; value: string | number }>(db, sql`SELECT name, value FROM quotas WHERE identity_uuid = ${accountUuid}`);
  const out = { ...QUOTA_DEFAULTS };
  for (const r of found) out[r.name] = Number(r.value);
  return out;
}

/** What a creating call would add, per quota name (empty: the call is not counted). */
export async function quotaDemand(db: Tx, operationId: string, msg: Record<string, any>): Promise<Record<string, number>> {
  const one = async (q: ReturnType<typeof sql>) => (await rows<Record<string, string | number>>(db, q))[0];
  switch (operationId) {
    case 'CreateVmInstance': {
      const o = await one(sql`SELECT cpu_num, memory_size FROM instance_offerings WHERE uuid = ${String(msg.instanceOfferingUuid ?? '')}`);
      const image = await one(sql`SELECT size FROM images WHERE uuid = ${String(msg.imageUuid ?? '')}`);
      const dataUuids = ((msg.dataDiskOfferingUuids as string[] | undefined) ?? []).filter((x) => typeof x === 'string');
      const disks = dataUuids.length
        ? await rows<{ uuid: string; disk_size: string | number }>(
            db,
            sql`SELECT uuid, disk_size FROM disk_offerings WHERE uuid = ANY(${sql.param(dataUuids)}::text[])`,
          )
        : [];
      const sizeOf = new Map(disks.map((d) => [d.uuid, Number(d.disk_size)]));
      const dataSize = dataUuids.reduce((s, u) => s + (sizeOf.get(u) ?? 0), 0);
      return {
        'vm.num': 1,
        'vm.cpuNum': Number(o?.cpu_num ?? 0),
        'vm.memorySize': Number(o?.memory_size ?? 0),
        'volume.data.num': dataUuids.length,
        'volume.capacity': Number(image?.size ?? 0) + dataSize,
      };
    }
    case 'CreateDataVolume': {
      const d = await one(sql`SELECT disk_size FROM disk_offerings WHERE uuid = ${String(msg.diskOfferingUuid ?? '')}`);
      return { 'volume.data.num': 1, 'volume.capacity': Number(d?.disk_size ?? 0) };
    }
    case 'ChangeInstanceOffering': {
      // What the VM would grow by (a smaller offering needs nothing): otherwise a small VM could outgrow the quota.
      const o = await one(sql`SELECT cpu_num, memory_size FROM instance_offerings WHERE uuid = ${String(msg.instanceOfferingUuid ?? '')}`);
      const vm = await one(sql`SELECT cpu_num, memory_size FROM vm_instances WHERE uuid = ${String(msg.vmInstanceUuid ?? '')}`);
      if (!o || !vm) return {};
      return {
        'vm.cpuNum': Math.max(0, Number(o.cpu_num) - Number(vm.cpu_num)),
        'vm.memorySize': Math.max(0, Number(o.memory_size) - Number(vm.memory_size)),
      };
    }
    case 'CreateL3Network':
      return { 'l3.num': 1 };
    case 'AddImage':
      return { 'image.num': 1 };
    default:
      return {};
  }
}

/** Throws ID.1003 when `demand` on top of the account's usage passes one of its limits. */
export async function checkQuota(db: Db, accountUuid: string, demand: Record<string, number>): Promise<void> {
  const names = Object.keys(demand).filter((n) => demand[n] > 0);
  if (!names.length) return;
  const [usage, limits] = await Promise.all([quotaUsage(db, accountUuid), quotaLimits(db, accountUuid)]);
  for (const name of names) {
    if (usage[name] + demand[name] > limits[name]) {
      // Upstream's IdentityErrors.QUOTA_EXCEEDING.
      const details = `quota exceeding: account[uuid:${accountUuid}] quota[${name}] is ${limits[name]}, used ${usage[name]}, this call needs ${demand[name]} more`;
      throw new ApiError(errorCode('ID.1003', details), 409);
    }
  }
}
