// What storage served by an agent of its own (not the hosts') shares: backup storage, and the primary storage types
// Ceph and iSCSI. Such a type keeps a row of its own beside the storage's (same uuid; ON DELETE CASCADE), reaches
// its agent per storage (Ceph and iSCSI: the simulator agent's simulated clusters and servers, no real agent is
// deployed yet), and is added by a flow whose first step writes the rows and whose failure deletes them again.
import { eq, type InferSelectModel } from 'drizzle-orm';
import type { AnyPgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { AgentPath, AgentRequest, AgentResponse } from '../agent-client/index.js';
import type { DomainContext } from '../core/domain.js';
import { err, toApiError, type ApiError } from '../core/errors.js';
import { runFlow, type FlowStep } from '../core/flow.js';
import type { Tx } from '../db/index.js';
import { backupStorage, primaryStorage } from '../db/schema/index.js';
import type { PrimaryStorageService } from './primary.js';
import type { CapacityReply } from './types.js';

/** SYS.1006 `<what>: <the agent's error>`, that error kept as the cause. */
export function agentFailure(what: string, e: unknown): ApiError {
  const cause = toApiError(e).error;
  return err('SYS.1006', `${what}: ${cause.details ?? cause.description}`, cause);
}

/** Commands to the simulator agent, which serves `kind` storage (e.g. `Ceph`), each addressed to one storage. */
export function simulatedStorageAgent(app: DomainContext, kind: string) {
  return async <P extends AgentPath>(storageUuid: string, path: P, body: AgentRequest<P>): Promise<AgentResponse<P>> => {
    if (!app.options.simulatorUrl) throw err('SYS.1006', `${kind} storage is served by the simulator agent, and none is configured on this management node`);
    return app.agents.call(app.options.simulatorUrl, path, body, { targetUuid: storageUuid });
  };
}

/** Reads a type's own row of a storage (`table.uuid` = the storage's); SYS.1006 when the storage has none. */
export function typeRecord<T extends PgTable & { uuid: AnyPgColumn }>(db: Tx, table: T, storage: 'primary' | 'backup', kind: string) {
  return async (uuid: string): Promise<InferSelectModel<T>> => {
    const [row] = await db
      .select()
      .from(table as PgTable)
      .where(eq(table.uuid, uuid));
    if (!row) throw err('SYS.1006', `${storage} storage[uuid:${uuid}] has no ${kind} record`);
    return row as InferSelectModel<T>;
  };
}

/**
 * An add flow's first step: `write` the storage's rows. Undone by deleting the storage's row (its type's rows go
 * with it).
 */
export function writeStorageStep<D>(db: Tx, table: typeof primaryStorage | typeof backupStorage, uuid: string, write: () => Promise<unknown>): FlowStep<D> {
  return {
    name: table === primaryStorage ? 'write primary storage' : 'write backup storage',
    run: async () => void (await write()),
    rollback: async () => void (await db.delete(table).where(eq(table.uuid, uuid))),
  };
}

export interface AgentPrimaryStorageAdd {
  /** The flow's name (a job's progress shows its steps). */
  flow: string;
  /** The primary storage's row; it is written Connecting. */
  row: Omit<typeof primaryStorage.$inferInsert, 'status'> & { uuid: string };
  /** The type's own rows, in the same transaction. */
  writeTypeRows(tx: Tx): Promise<void>;
  /** Initializes the storage through its agent; the reply's capacities are recorded. */
  init(): Promise<CapacityReply>;
  /** What a failed init says before the agent's error. */
  initFailure: string;
}

/**
 * AddCephPrimaryStorage, AddIscsiFileSystemBackendPrimaryStorage: write the rows → init through the agent (its
 * capacities recorded) → Connected. A failure removes everything written.
 */
export async function addAgentPrimaryStorage(service: PrimaryStorageService, add: AgentPrimaryStorageAdd): Promise<void> {
  const { db } = service.app;
  const { uuid } = add.row;
  await runFlow(
    add.flow,
    [
      writeStorageStep(db, primaryStorage, uuid, () =>
        db.transaction(async (tx) => {
          await tx.insert(primaryStorage).values({ ...add.row, status: 'Connecting' });
          await add.writeTypeRows(tx);
        }),
      ),
      {
        name: 'init',
        async run() {
          let r: CapacityReply;
          try {
            r = await add.init();
          } catch (e) {
            throw agentFailure(add.initFailure, e);
          }
          await service.recordCapacity(uuid, r);
          await db.update(primaryStorage).set({ status: 'Connected' }).where(eq(primaryStorage.uuid, uuid));
        },
      },
    ],
    {},
  );
}
