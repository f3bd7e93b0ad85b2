// Programmatic entry points: start agents in-process (tests, the management server's simulator) and the
// protocol types they speak.
export { AGENT_KINDS, BACKENDS, DEFAULT_PORTS, startAgent } from './agent.js';
export type { AgentBackend, AgentKind, RunningAgent, StartAgentOptions } from './agent.js';
export { TARGET_HEADER, TIMEOUT_HEADER } from './lib/server.js';
export type { AgentLog } from './lib/server.js';
export type { BodyOf, OperationId, ReplyOf, Schemas } from './lib/protocol.js';
export { PROTOCOL_SPEC_URL } from './lib/spec.js';
export { startRfbServer } from './simulator/rfb.js';
export type { ConsoleProxyOptions } from './console-proxy/handlers.js';
