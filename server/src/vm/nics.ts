// VM NICs (zstack-internals.md §5.3–5.4): an IP from the network service, a MAC `fa:xx:xx:xx:xx:<deviceId>`
// (regenerated when it collides with an existing one: vm_nics.mac is UNIQUE), the lowest free device id, the tap
// name `vnic<internalId>.<deviceId>`. The IP and the NIC row are written in one transaction.
import { eq, inArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { rows, type Tx } from '../db/index.js';
import { vmNics } from '../db/schema/index.js';
import { argErr, err } from '../core/errors.js';
import { newUuid } from '../core/ids.js';
import { nicInternalName } from './hypervisor.js';
import type { NicRow, VmRow } from './inventory.js';

const MAC_ATTEMPTS = 8;

/** True for a UNIQUE violation (PostgreSQL 23505), optionally on a constraint whose name contains `hint`. */
export function isUniqueViolation(e: unknown, hint?: string): boolean {
  for (let c: any = e; c; c = c.cause) {
    if (c.code === '23505') return !hint || String(c.constraint ?? c.message ?? '').includes(hint);
  }
  return false;
}

export function lowestFreeDeviceId(used: Iterable<number>, from = 0): number {
  const taken = new Set(used);
  let id = from;
  while (taken.has(id)) id++;
  return id;
}

export interface NicRequest {
  l3NetworkUuid: string;
  deviceId: number;
  staticIp?: string;
  usedFor: 'UserVm' | 'ApplianceVm';
  metaData?: string;
  /** The NIC's hypervisor type when it is already known (the host the VM is being placed on); else the VM's. */
  hypervisorType?: string | null;
}

/**
 * Takes an IP and writes the NIC row, in one transaction (the caller's `tx` when given). A MAC that collides with
 * an existing one is drawn again (ON CONFLICT DO NOTHING: the transaction is never aborted by it).
 */
export async function allocateNic(app: DomainContext, vm: VmRow, req: NicRequest, tx?: Tx): Promise<NicRow> {
  const work = async (t: Tx) => {
    const uuid = newUuid();
    if (req.usedFor === 'UserVm') {
      // A deletion of the L3 makes it Disabled first while holding its row (vm/allocation/fences.ts): this lock
      // waits for that, and the state read after it tells a NIC not to land on an L3 being deleted.
      const [l3] = await rows<{ state: string }>(t, sql`SELECT state FROM l3_networks WHERE uuid = ${req.l3NetworkUuid} FOR KEY SHARE`);
      if (!l3) throw err('SYS.1003', `L3 network[uuid:${req.l3NetworkUuid}] is not found`);
      if (l3.state !== 'Enabled') throw argErr(`L3 network[uuid:${req.l3NetworkUuid}] is ${l3.state}; only Enabled L3 networks can be used`);
    }
    const ip = await app.use('networks').allocateIp(t, req.l3NetworkUuid, {
      staticIp: req.staticIp,
      usedFor: req.usedFor,
      vmNicUuid: uuid,
    });
    for (let attempt = 1; attempt <= MAC_ATTEMPTS; attempt++) {
      const [row] = await t
        .insert(vmNics)
        .values({
          uuid,
          vmInstanceUuid: vm.uuid,
          l3NetworkUuid: req.l3NetworkUuid,
          usedIpUuid: ip.usedIpUuid,
          ip: ip.ip,
          netmask: ip.netmask,
          gateway: ip.gateway,
          mac: app.use('networks').generateMac(req.deviceId),
          metaData: req.metaData ?? null,
          deviceId: req.deviceId,
          internalName: nicInternalName(vm, req.deviceId),
          hypervisorType: req.hypervisorType === undefined ? vm.hypervisorType : req.hypervisorType,
        })
        .onConflictDoNothing({ target: vmNics.mac })
        .returning();
      if (row) return row;
    }
    throw err('SYS.1006', `cannot draw a unique MAC address for a NIC of VM[uuid:${vm.uuid}] after ${MAC_ATTEMPTS} attempts`);
  };
  return tx ? work(tx) : app.db.transaction(work);
}

/** Gives the NICs' IPs back (the NIC rows stay, keeping their last address for display). */
export async function releaseNicIps(app: DomainContext, tx: Tx, nics: NicRow[]): Promise<void> {
  const holding = nics.filter((n) => n.usedIpUuid);
  if (holding.length === 0) return;
  await tx
    .update(vmNics)
    .set({ usedIpUuid: null, lastOpDate: new Date() })
    .where(
      inArray(
        vmNics.uuid,
        holding.map((n) => n.uuid),
      ),
    );
  for (const n of holding) await app.use('networks').releaseIp(tx, n.usedIpUuid!);
}

/** Takes an IP again for NICs whose IP was released (recover): the old address if still free, else any. */
export async function reacquireNicIps(app: DomainContext, vm: VmRow, nics: NicRow[]): Promise<void> {
  for (const n of nics.filter((x) => !x.usedIpUuid)) {
    const take = (staticIp?: string) =>
      app.db.transaction(async (tx) => {
        const ip = await app.use('networks').allocateIp(tx, n.l3NetworkUuid, {
          staticIp,
          usedFor: vm.type === 'ApplianceVm' ? 'ApplianceVm' : 'UserVm',
          vmNicUuid: n.uuid,
        });
        await tx
          .update(vmNics)
          .set({ usedIpUuid: ip.usedIpUuid, ip: ip.ip, netmask: ip.netmask, gateway: ip.gateway, lastOpDate: new Date() })
          .where(eq(vmNics.uuid, n.uuid));
      });
    try {
      await take(n.ip ?? undefined);
    } catch {
      await take();
    }
  }
}

/** Releases the IP and deletes the NIC row, in one transaction. */
export async function deleteNic(app: DomainContext, nic: NicRow, tx?: Tx): Promise<void> {
  const work = async (t: Tx) => {
    await t.delete(vmNics).where(eq(vmNics.uuid, nic.uuid));
    if (nic.usedIpUuid) await app.use('networks').releaseIp(t, nic.usedIpUuid);
  };
  if (tx) await work(tx);
  else await app.db.transaction(work);
}
