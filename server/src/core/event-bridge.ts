// Carries cluster-wide events between management nodes through PostgreSQL LISTEN/NOTIFY (real PostgreSQL only;
// with the embedded database there is one process, so nothing to bridge). Each node ignores its own messages.
import type pg from 'pg';
import type { EventBus, EventMap } from './events.js';

const CHANNEL = 'zstack_events';

export async function bridgeEvents(pool: pg.Pool, bus: EventBus, nodeUuid: string): Promise<() => Promise<void>> {
  const listener = await pool.connect();
  let closed = false;
  listener.on('notification', (msg) => {
    if (msg.channel !== CHANNEL || !msg.payload) return;
    try {
      const { from, name, payload } = JSON.parse(msg.payload) as { from: string; name: keyof EventMap; payload: never };
      if (from !== nodeUuid) bus.emitLocal(name, payload);
    } catch (e) {
      console.error('[events] bad cross-node event:', (e as Error).message);
    }
  });
  listener.on('error', (e) => {
    if (!closed) console.error('[events] listener connection failed:', e.message);
  });
  await listener.query(`LISTEN ${CHANNEL}`);
  bus.publishRemote = (name, payload) => {
    pool
      .query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ from: nodeUuid, name, payload })])
      .catch((e) => console.error(`[events] cannot publish ${name}:`, e.message));
  };
  return async () => {
    closed = true;
    bus.publishRemote = undefined;
    await listener.query(`UNLISTEN ${CHANNEL}`).catch(() => undefined);
    listener.release();
  };
}
