// The in-process event bus. Canonical events (host status changes, deletions, config updates) go through here so
// modules (GC, ping tracker, console) can react without knowing each other.
import { EventEmitter } from 'node:events';

export interface EventMap {
  'host.status': { hostUuid: string; oldStatus: string; newStatus: string };
  'host.deleted': { hostUuid: string };
  'primaryStorage.deleted': { primaryStorageUuid: string };
  'vm.state': { vmUuid: string; oldState: string; newState: string; hostUuid?: string | null };
  'vm.deleted': { vmUuid: string };
  'globalConfig.updated': { category: string; name: string; value: string };
}

export class EventBus {
  private emitter = new EventEmitter().setMaxListeners(1000);

  emit<K extends keyof EventMap>(name: K, payload: EventMap[K]): void {
    for (const listener of this.emitter.listeners(name)) {
      // Listeners run detached: a slow or failing subscriber never blocks or breaks the emitter.
      Promise.resolve()
        .then(() => (listener as (p: EventMap[K]) => unknown)(payload))
        .catch((e) => console.error(`[events] listener of ${name} failed:`, e instanceof Error ? e.message : e));
    }
  }

  on<K extends keyof EventMap>(name: K, listener: (payload: EventMap[K]) => unknown): () => void {
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  }
}
