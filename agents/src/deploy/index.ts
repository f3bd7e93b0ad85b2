// The agent deployers: `deployAgent` puts one agent on one host over SSH, `deployMany` does many hosts in parallel.
export { deployAgent } from './deploy.js';
export { deployMany, type DeployManyOptions, type DeployOutcome } from './many.js';
export { DeployError } from './errors.js';
export { agentBundle, buildAgentBundle, type AgentBundle } from './bundle.js';
export { fingerprint } from './ssh.js';
export { DEFAULT_INSTALL_PARENT } from './context.js';
export { MIN_NODE_MAJOR } from './tasks.js';
export { DEPLOY_KINDS, TASK_NAMES } from './types.js';
export type { DeployKind, DeployOptions, DeployResult, ErrorCode, PlatformFacts, TaskLevel, TaskLog, TaskName, TaskStatus } from './types.js';
