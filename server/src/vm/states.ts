// Which VM states allow which operation (zstack-api.md §4.1, upstream AbstractVmInstance). A VM in any other state
// is refused with VM.1000 (409) worded as upstream.
import { stateErr } from '../core/errors.js';

export const ALLOWED_STATES = {
  StartVmInstance: ['Created', 'Running', 'Stopped', 'Crashed'],
  StopVmInstance: ['NoState', 'Running', 'Stopped', 'Unknown', 'Crashed', 'Paused'],
  RebootVmInstance: ['NoState', 'Running', 'Crashed'],
  DestroyVmInstance: [
    'Running',
    'Stopped',
    'Unknown',
    'Crashed',
    'Starting',
    'Migrating',
    'VolumeMigrating',
    'Stopping',
    'Rebooting',
    'Paused',
    'Pausing',
    'Resuming',
  ],
  RecoverVmInstance: ['Destroyed'],
  ExpungeVmInstance: ['Destroyed'],
  MigrateVm: ['Running', 'Unknown', 'Paused'],
  AttachL3NetworkToVm: ['Running', 'Stopped'],
  DetachL3NetworkFromVm: ['Running', 'Stopped', 'Paused'],
  AttachDataVolumeToVm: ['Running', 'Stopped', 'Paused'],
  DetachDataVolumeFromVm: ['Running', 'Stopped', 'Paused'],
  ReconnectVirtualRouter: ['Running'],
  ChangeInstanceOffering: ['Running', 'Stopped'],
  AttachIsoToVmInstance: ['Running', 'Stopped'],
  DetachIsoFromVmInstance: ['Running', 'Stopped'],
  GetVmMigrationCandidateHosts: ['Running'],
  GetVmConsoleAddress: ['Running'],
} as const;

export type VmOperation = keyof typeof ALLOWED_STATES;

export function notInStateErr(state: string, op: string, allowed: readonly string[]) {
  return stateErr('VM.1000', `current vm instance state[${state}] doesn't allow to proceed message[${op}], allowed states are [${allowed.join(', ')}]`);
}

/** Throws VM.1000 unless `state` allows `op`. */
export function requireState(state: string, op: VmOperation): void {
  const allowed = ALLOWED_STATES[op] as readonly string[];
  if (!allowed.includes(state)) throw notInStateErr(state, op, allowed);
}
