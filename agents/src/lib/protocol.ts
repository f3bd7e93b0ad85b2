// Types of the agent protocol, derived from the generated OpenAPI types (openapi/agents/protocol.yaml).
// Regenerate after editing the spec with: npm run generate (spec:check tells whether it is current).
import type { components, operations } from '../../../openapi/generated/agent-protocol.js';

export type Schemas = components['schemas'];
export type OperationId = keyof operations;

type JsonContent<T> = T extends { content: { 'application/json': infer B } } ? B : never;

/** The JSON body of an operation's request (`{}` for operations without fields). */
export type BodyOf<O extends OperationId> = operations[O] extends { requestBody?: infer R }
  ? [NonNullable<R>] extends [never]
    ? Record<string, never>
    : JsonContent<NonNullable<R>>
  : Record<string, never>;

/** The JSON body of an operation's 200 reply. */
export type ReplyOf<O extends OperationId> = JsonContent<operations[O]['responses'][200]>;

type CapacityKeys = 'totalCapacity' | 'availableCapacity';

/**
 * What a handler returns on success: the reply without `success`/`error` (the server adds them).
 * Capacities are optional because backup storage replies get them added by a reply decorator.
 */
export type HandlerResult<O extends OperationId> = Omit<ReplyOf<O>, 'success' | 'error' | CapacityKeys> & {
  totalCapacity?: number;
  availableCapacity?: number;
};

/** Which kind of resource `X-Zstack-Target-Uuid` names for an operation (`x-zstack-target` in the spec). */
export type TargetKind = 'host' | 'backupstorage' | 'ceph' | 'iscsi' | 'virtualrouter' | 'console' | 'agent' | 'simulator';

/** Kinds whose commands are recorded and subject to simulator fault knobs. */
export const COMMAND_TARGETS: readonly TargetKind[] = ['host', 'backupstorage', 'ceph', 'iscsi', 'virtualrouter', 'console'];

export type AgentResponse = Schemas['AgentResponse'];
export type CommandRecord = Schemas['CommandRecord'];
export type CommandOutcome = Schemas['CommandOutcome'];
export type FaultConfig = Schemas['SimulatorFaultConfig'];
export type VolumeTO = Schemas['VolumeTO'];
export type NicTO = Schemas['NicTO'];
export type VmState = Schemas['VmState'];
export type DhcpInfo = Schemas['DhcpInfo'];
export type DnsInfo = Schemas['DnsInfo'];
export type VirtualRouterNicInfo = Schemas['VirtualRouterNicInfo'];
export type DownloadProgress = Schemas['DownloadProgress'];
