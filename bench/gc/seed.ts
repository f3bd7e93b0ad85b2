// Seeds many running VMs fast: one VM per host is created through the API (the real create path: allocation,
// IP, volume, /vm/start on the simulator), then each is cloned in SQL — every column copied, with fresh uuids, a
// fresh IP from the same range and a fresh MAC — and every clone is started on its simulated host with the same
// /vm/start command the server sends. Counters that creating a VM moved (host CPU/memory/VM count, primary storage
// capacity) are moved by the same amount per clone, measured from the template's own creation, so nothing about
// capacity is guessed. Clones are indistinguishable from API-created VMs to the server (DestroyVmInstance included).
import type pg from 'pg';
import { pool, type BenchWorld } from '../provision/lib.js';
import type { ZStackClient } from '../../sdk/src/index.js';

/** Numeric columns of a table, by name (for the before/after capacity deltas). */
async function numericColumns(db: pg.Client, table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND data_type IN ('bigint', 'integer', 'double precision', 'numeric') AND coalesce(column_default, '') NOT LIKE 'nextval%' ORDER BY ordinal_position`,
    [table],
  );
  return rows.map((r) => r.column_name as string);
}

async function columns(db: pg.Client, table: string): Promise<string[]> {
  const { rows } = await db.query(`SELECT column_name, column_default FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [
    table,
  ]);
  // serial columns (internal_id) take their default: every clone gets its own.
  return rows.filter((r) => !String(r.column_default ?? '').startsWith('nextval(')).map((r) => r.column_name as string);
}

type Snapshot = Map<string, Record<string, number>>;
async function snapshot(db: pg.Client, table: string, cols: string[]): Promise<Snapshot> {
  const { rows } = await db.query(`SELECT uuid, ${cols.map((c) => `${c}::float8 AS ${c}`).join(', ')} FROM ${table}`);
  return new Map(rows.map((r) => [r.uuid as string, r]));
}

/** `UPDATE table SET col = col + delta × times` for every counter that moved between the two snapshots. */
async function applyDeltas(
  db: pg.Client,
  table: string,
  cols: string[],
  before: Snapshot,
  after: Snapshot,
  times: (uuid: string) => number,
  perVm: (uuid: string) => number,
) {
  for (const [uuid, row] of after) {
    const b = before.get(uuid);
    if (!b) continue;
    const sets = cols
      .map((c) => ({ c, d: (Number(row[c]) - Number(b[c])) / perVm(uuid) }))
      .filter(({ d }) => d !== 0)
      .map(({ c, d }) => `${c} = ${c} + (${d})::float8 * ${times(uuid)}`);
    if (sets.length) await db.query(`UPDATE ${table} SET ${sets.join(', ')} WHERE uuid = $1`, [uuid]);
  }
}

/**
 * `total` running VMs spread evenly over the hosts of `w`: `hosts` created through the API, the rest cloned.
 * Returns the VM uuids and how long each phase took.
 */
export async function seedVms(
  zs: ZStackClient,
  db: pg.Client,
  sim: { url: string; secret: string },
  w: BenchWorld,
  total: number,
): Promise<{ vms: string[]; templatesS: number; cloneS: number; simulatorS: number }> {
  const hosts = w.hostUuids.length;
  if (total % hosts) throw new Error(`--jobs (${total}) must be a multiple of --hosts (${hosts}) when seeding`);
  const perHost = total / hosts;
  const hostCols = await numericColumns(db, 'hosts');
  const psCols = await numericColumns(db, 'primary_storage');
  const hostsBefore = await snapshot(db, 'hosts', hostCols);
  const psBefore = await snapshot(db, 'primary_storage', psCols);

  // 1. One VM per host through the API, one after the other so that LeastVmPreferred puts each on an empty host
  // (the simulator keeps ≤ 200 command records per host: an uneven spread would overflow them and spoil the check).
  let t = Date.now();
  const templates: string[] = [];
  await pool(hosts, 1, async (i) => {
    const vm = await zs.createVmInstance({
      name: `vm-t${i}`,
      instanceOfferingUuid: w.instanceOfferingUuid,
      imageUuid: w.imageUuid,
      l3NetworkUuids: [w.l3NetworkUuid],
    });
    templates.push(vm.inventory.uuid);
  });
  const templatesS = (Date.now() - t) / 1000;

  // 2. Clone in SQL: VM rows, root volumes, used IPs, NICs; then the counters.
  t = Date.now();
  const clones = perHost - 1;
  const perTemplateHost = new Map<string, number>();
  for (const r of (await db.query(`SELECT host_uuid FROM vm_instances WHERE uuid = ANY($1)`, [templates])).rows) {
    perTemplateHost.set(r.host_uuid, (perTemplateHost.get(r.host_uuid) ?? 0) + 1);
  }
  if (perTemplateHost.size !== hosts) throw new Error(`the ${hosts} template VMs landed on ${perTemplateHost.size} hosts, not one per host`);
  const hostsAfter = await snapshot(db, 'hosts', hostCols);
  const psAfter = await snapshot(db, 'primary_storage', psCols);
  await db.query('BEGIN');
  if (clones > 0) {
    const vmCols = await columns(db, 'vm_instances');
    const volCols = await columns(db, 'volumes');
    const ipCols = await columns(db, 'used_ips');
    const nicCols = await columns(db, 'vm_nics');
    const id = (expr: string) => `md5(${expr} || '-' || g)`;
    const copy = (cols: string[], over: Record<string, string>, alias: string) => cols.map((c) => over[c] ?? `${alias}.${c}`).join(', ');
    const series = `CROSS JOIN generate_series(1, ${clones}) AS g`;
    await db.query(
      `INSERT INTO vm_instances (${vmCols.join(', ')}) SELECT ${copy(vmCols, { uuid: id('v.uuid'), name: `v.name || '-c' || g`, root_volume_uuid: id('v.root_volume_uuid'), create_date: 'now()', last_op_date: 'now()' }, 'v')} FROM vm_instances v ${series} WHERE v.uuid = ANY($1)`,
      [templates],
    );
    await db.query(
      `INSERT INTO volumes (${volCols.join(', ')}) SELECT ${copy(volCols, { uuid: id('o.uuid'), vm_instance_uuid: id('o.vm_instance_uuid'), install_path: `o.install_path || '.c' || g`, create_date: 'now()', last_op_date: 'now()' }, 'o')} FROM volumes o ${series} WHERE o.vm_instance_uuid = ANY($1)`,
      [templates],
    );
    // Fresh addresses after the highest one used on each L3 (the bench range is a /16).
    await db.query(
      `INSERT INTO used_ips (${ipCols.join(', ')})
       SELECT ${copy(ipCols, { uuid: id('u.uuid'), vm_nic_uuid: id('u.vm_nic_uuid'), ip_in_long: 'u.new_long', ip: `host('0.0.0.0'::inet + u.new_long)`, create_date: 'now()', last_op_date: 'now()' }, 'u')}
       FROM (SELECT u.*, g, m.top + row_number() OVER (PARTITION BY u.l3_network_uuid ORDER BY u.uuid, g) AS new_long
             FROM used_ips u JOIN vm_nics n ON n.used_ip_uuid = u.uuid ${series}
             JOIN (SELECT l3_network_uuid, max(ip_in_long) AS top FROM used_ips GROUP BY 1) m ON m.l3_network_uuid = u.l3_network_uuid
             WHERE n.vm_instance_uuid = ANY($1)) u`,
      [templates],
    );
    const mac = `'fa:' || substr(md5(n.uuid || '-' || g), 1, 2) || ':' || substr(md5(n.uuid || '-' || g), 3, 2) || ':' || substr(md5(n.uuid || '-' || g), 5, 2) || ':' || substr(md5(n.uuid || '-' || g), 7, 2) || ':' || substr(md5(n.uuid || '-' || g), 9, 2)`;
    await db.query(
      `INSERT INTO vm_nics (${nicCols.join(', ')})
       SELECT ${copy(nicCols, { uuid: id('n.uuid'), vm_instance_uuid: id('n.vm_instance_uuid'), used_ip_uuid: id('n.used_ip_uuid'), ip: `(SELECT ip FROM used_ips WHERE uuid = ${id('n.used_ip_uuid')})`, mac, internal_name: 'NULL', create_date: 'now()', last_op_date: 'now()' }, 'n')}
       FROM vm_nics n ${series} WHERE n.vm_instance_uuid = ANY($1)`,
      [templates],
    );
    await applyDeltas(
      db,
      'hosts',
      hostCols,
      hostsBefore,
      hostsAfter,
      (h) => clones * (perTemplateHost.get(h) ?? 0),
      (h) => perTemplateHost.get(h) ?? 1,
    );
    await applyDeltas(
      db,
      'primary_storage',
      psCols,
      psBefore,
      psAfter,
      () => clones * hosts,
      () => hosts,
    );
  }
  await db.query('COMMIT');
  const cloneS = (Date.now() - t) / 1000;

  // 3. Start the clones on their simulated hosts (the command the server builds, from the cloned rows).
  t = Date.now();
  const { rows } = await db.query(
    `SELECT v.uuid, v.name, v.host_uuid, v.internal_id, v.memory_size, v.cpu_num, v.cpu_speed, o.install_path, o.uuid AS volume_uuid, n.uuid AS nic_uuid, n.mac, n.ip, n.l3_network_uuid
     FROM vm_instances v JOIN volumes o ON o.uuid = v.root_volume_uuid JOIN vm_nics n ON n.vm_instance_uuid = v.uuid
     WHERE v.type = 'UserVm' AND v.state = 'Running' AND NOT (v.uuid = ANY($1))`,
    [templates],
  );
  await pool(rows.length, 64, async (i) => {
    const r = rows[i];
    const res = await fetch(`${sim.url}/vm/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${sim.secret}`, 'X-Zstack-Target-Uuid': r.host_uuid },
      body: JSON.stringify({
        vmInstanceUuid: r.uuid,
        vmInternalId: r.internal_id,
        vmName: r.name,
        memory: Number(r.memory_size),
        cpuNum: r.cpu_num,
        cpuSpeed: Number(r.cpu_speed),
        socketNum: 1,
        cpuOnSocket: r.cpu_num,
        bootDev: ['hd'],
        rootVolume: { installPath: r.install_path, deviceId: 0, deviceType: 'file', volumeUuid: r.volume_uuid, useVirtio: true },
        dataVolumes: [],
        nics: [
          { mac: r.mac, uuid: r.nic_uuid, deviceId: 0, nicInternalName: `vnic${r.internal_id}.0`, l3NetworkUuid: r.l3_network_uuid, ip: r.ip, useVirtio: true },
        ],
        timeout: 300,
        useVirtio: true,
        consoleMode: 'vnc',
      }),
    });
    const body = (await res.json()) as { success: boolean; error?: string };
    if (!body.success) throw new Error(`simulator /vm/start of clone ${r.uuid}: ${body.error}`);
  });
  // The simulator keeps a bounded record list per host: start the measured part with empty ones.
  await pool(hosts, 16, async (i) => {
    await fetch(`${sim.url}/simulator/hosts/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${sim.secret}` },
      body: JSON.stringify({ hostUuid: w.hostUuids[i], clear: true }),
    });
  });
  const simulatorS = (Date.now() - t) / 1000;
  const all = (await db.query(`SELECT uuid FROM vm_instances WHERE type = 'UserVm' AND state = 'Running'`)).rows.map((r) => r.uuid as string);
  return { vms: all, templatesS, cloneS, simulatorS };
}
