// The ping tracker: every `host/ping.interval` seconds each host's agent gets `/host/ping` (short budget,
// `host/ping.timeout`), at most `host/ping.parallelismDegree` at a time. The tick is at most a second, so a changed
// interval takes effect at once rather than after the old one runs out.
import { ne } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { hosts } from '../db/schema/index.js';
import type { HostService } from './service.js';

export function startPingTracker(app: DomainContext, service: HostService): void {
  const intervalMs = () => app.globalConfig.getMs('host', 'ping.interval');
  let lastRound = 0;
  app.every(
    'host-ping',
    () => Math.min(1000, intervalMs()),
    async () => {
      if (Date.now() - lastRound < intervalMs()) return;
      lastRound = Date.now();
      const rows = await app.db.select({ uuid: hosts.uuid }).from(hosts).where(ne(hosts.status, 'Connecting'));
      await forEachLimited(
        rows.map((r) => r.uuid),
        app.globalConfig.getNumber('host', 'ping.parallelismDegree'),
        (uuid) => service.ping(uuid),
      );
    },
  );
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item).catch((e) => console.error('[host-ping]', e instanceof Error ? e.message : e));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
