// Every error code the server emits: its description (the ErrorCode's `description`), the HTTP status it gets when
// answered directly, and what it means for a caller. The one table: core/errors.ts takes descriptions and statuses
// from here, the docs render it as the error catalogue (/zstack/docs/errors), and a test checks that every code
// the server's sources name is in it.

export interface ErrorCodeInfo {
  /** The ErrorCode's `description`, upstream's wording where upstream has the code. */
  description: string;
  /**
   * HTTP status of a direct answer (a refusal with `X-ZStack-Errors: direct`, REST-layer faults). Absent: 503. A
   * failed job is always 503 on its poll, whatever the code.
   */
  status?: number;
  /** Other statuses the code is sent with, and when. */
  alsoStatus?: Record<number, string>;
  /** What happened and what the caller can do. */
  meaning: string;
}

export const ERROR_CODES = {
  'SYS.1000': {
    description: 'An internal error happened in the system',
    status: 500,
    meaning: 'A bug in the server. The reply carries a correlation id; the server log has the cause under that id. Retrying does not help.',
  },
  'SYS.1001': {
    description: 'A message or an operation timeout',
    meaning:
      'The API (or one of its steps or agent calls) ran past its timeout (X-API-Timeout, the global config or the API default). The details name the step and the elapsed time; work done so far is rolled back.',
  },
  'SYS.1002': { description: 'Unable to create a resource', meaning: 'A resource could not be created; the details and the cause say why.' },
  'SYS.1003': {
    description: 'Unable to find a resource',
    status: 404,
    meaning: 'A uuid in the request (or a job uuid on the poll) names nothing the caller can see.',
  },
  'SYS.1004': {
    description: 'Unable to delete a resource',
    alsoStatus: { 409: 'the resource is in use' },
    meaning: 'The resource is still in use (attached, holding volumes…); detach first or delete with deleteMode=Enforcing.',
  },
  'SYS.1005': {
    description: 'Unable to change the state of a resource',
    status: 409,
    meaning: 'The state change is not allowed from the resource’s current state.',
  },
  'SYS.1006': {
    description: 'An operation failed',
    meaning:
      'The operation failed; the details and the cause chain (often an agent’s error) say why. Also the code of jobs left running by a management node that died.',
  },
  'SYS.1007': {
    description: 'One or more API argument is invalid',
    status: 400,
    alsoStatus: { 413: 'body too large', 414: 'URL too long', 415: 'not JSON', 431: 'headers too large' },
    meaning: 'The request does not match the API: the details name the field and the rule. Fix the call; retrying cannot help.',
  },
  'SYS.1008': {
    description: 'No service can deal with the message',
    meaning: 'The 1.1 RPC endpoint (/zstack/api) received a message class it does not know.',
  },
  'SYS.1010': {
    description: 'The resource is not ready',
    alsoStatus: { 409: 'checked before the job starts' },
    meaning: 'A resource the operation needs is not usable yet (disabled, disconnected, full).',
  },
  'SYS.1014': { description: 'The operation is not implemented', meaning: 'The API is in the spec but this server has no handler for it.' },
  'SYS.1015': {
    description: 'An HTTP call failed',
    meaning: 'An agent (host, storage, virtual router, console proxy) could not be reached or answered something that is not an agent reply.',
  },
  'SYS.1017': { description: 'The operation was cancelled', meaning: 'The work was cancelled before it finished (e.g. a deploy aborted).' },
  'ID.1000': { description: 'Authentication failed', status: 401, meaning: 'Wrong account name or password.' },
  'ID.1001': { description: 'The session is invalid or expired', status: 401, meaning: 'No session, an unknown one, or an expired one: log in again.' },
  'ID.1002': { description: 'Permission denied', status: 403, meaning: 'The account may not call this API or touch this resource.' },
  'ID.1003': {
    description: 'Quota exceeding',
    status: 409,
    meaning:
      'The operation would take the account past one of its quotas (GetAccountQuotaUsage shows usage and limits); free resources or ask an admin to raise the quota (UpdateQuota).',
  },
  // Not an upstream code: upstream has no log-in throttling; a code of our own so it never reads as a quota error.
  'ID.1100': {
    description: 'Too many failed log-in attempts; retry later',
    status: 429,
    meaning: 'Log-ins are throttled for this account name or client address; Retry-After says when to try again.',
  },
  'HOST.1002': { description: 'Unable to reconnect the host', meaning: 'ReconnectHost failed; the cause names the failed step (SSH, deploy, agent).' },
  'HOST.1003': {
    description: 'Unable to connect the host',
    meaning: 'Adding or connecting a host failed (SSH, agent deployment, agent echo); the cause has the step.',
  },
  'HOST.1010': { description: 'The host is disconnected', meaning: 'The operation needs a host that is not Connected.' },
  'VM.1000': {
    description: 'The VM is not in a state that allows this operation',
    status: 409,
    meaning: 'E.g. starting a running VM, or attaching to a destroyed one.',
  },
  'HOST_ALLOCATION.1001': {
    description: 'No host is available',
    meaning: 'No Enabled, Connected host has the CPU, memory, storage and networks the VM needs.',
  },
  'PS.1000': { description: 'Not enough primary storage capacity', meaning: 'No primary storage the VM or volume can use has the free capacity.' },
  'L3.1000': { description: 'No IP address is available', meaning: 'The L3 network’s IP ranges are used up.' },
  'SG.1000': { description: "Unable to add the VM's NIC to the security group", meaning: 'A NIC is not on an L3 network the security group is attached to.' },
  'GC.1000': { description: 'Garbage collector error', meaning: 'A garbage collector job could not be run or changed.' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type KnownErrorCode = keyof typeof ERROR_CODES;

const table: Record<string, ErrorCodeInfo> = ERROR_CODES;

/** The description of a code (a generic one for a code not in the table). */
export const descriptionOf = (code: string): string => table[code]?.description ?? 'An error happened';

/** The HTTP status of a direct answer with this code (503 unless the table says otherwise). */
export const statusOf = (code: string): number => table[code]?.status ?? 503;
