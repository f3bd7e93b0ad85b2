// The in-process event bus. Canonical events (host status changes, deletions, config updates) go through here so
// modules (GC, ping tracker, console) can react without knowing each other.
import { EventEmitter } from 'node:events';
import { outsideTransactionScope } from '../db/tx-scope.js';

export interface EventMap {
  'host.status': { hostUuid: string; oldStatus: string; newStatus: string };
  'host.deleted': { hostUuid: string };
  'primaryStorage.deleted': { primaryStorageUuid: string };
  /** `primaryStorageUuids`: where all the VM's volumes are, when the emitter holds them (listeners need not read them). */
  'vm.state': { vmUuid: string; oldState: string; newState: string; hostUuid?: string | null; primaryStorageUuids?: string[] };
  'vm.deleted': { vmUuid: string };
  /** Volume rows removed for good (their snapshots follow). */
  'volume.expunged': { volumeUuids: string[] };
  'globalConfig.updated': { category: string; name: string; value: string };
}

/** Events every management node must see (the others stay on the node where they happen). */
const CLUSTER_WIDE = new Set<keyof EventMap>(['globalConfig.updated', 'host.status', 'host.deleted', 'primaryStorage.deleted']);

export class EventBus {
  private emitter = new EventEmitter().setMaxListeners(1000);
  /** Set by the PostgreSQL bridge: forwards cluster-wide events to the other nodes. */
  publishRemote?: (name: string, payload: unknown) => void;

  emit<K extends keyof EventMap>(name: K, payload: EventMap[K]): void {
    if (this.publishRemote && CLUSTER_WIDE.has(name)) this.publishRemote(name, payload);
    this.emitLocal(name, payload);
  }

  /** Delivers to this node's listeners only (events arriving from other nodes). */
  emitLocal<K extends keyof EventMap>(name: K, payload: EventMap[K]): void {
    for (const listener of this.emitter.listeners(name)) {
      // Listeners run detached (and outside an emitter's transaction): a slow or failing subscriber never blocks or
      // breaks the emitter.
      outsideTransactionScope(() =>
        Promise.resolve()
          .then(() => (listener as (p: EventMap[K]) => unknown)(payload))
          .catch((e) => console.error(`[events] listener of ${name} failed:`, e instanceof Error ? e.message : e)),
      );
    }
  }

  on<K extends keyof EventMap>(name: K, listener: (payload: EventMap[K]) => unknown): () => void {
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  }
}
