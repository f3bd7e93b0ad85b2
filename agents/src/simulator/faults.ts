// Fault knobs per simulated target (decision 8): connected=false drops the connection, commandDelays delay a
// command (cut short by the deadline), failCommands answer success:false.
import { sleep } from '../lib/abort.js';
import { DropConnection } from '../lib/errors.js';
import type { CommandInterceptor } from '../lib/handler.js';
import type { FaultConfig, Schemas, TargetKind } from '../lib/protocol.js';

export type FaultPatch = Schemas['SimulatorFaults'];

/** `*` in commandDelays / failCommands applies to every path. */
const ANY_PATH = '*';

export class FaultStore implements CommandInterceptor {
  private readonly configs = new Map<string, FaultConfig>();

  get(kind: TargetKind, target: string): FaultConfig | undefined {
    return this.configs.get(keyOf(kind, target));
  }

  /** Applies the fields present in `patch`; omitted ones keep their value. Returns the config now in force. */
  update(kind: TargetKind, target: string, patch: FaultPatch): FaultConfig {
    const current = this.get(kind, target) ?? { connected: true, commandDelays: {}, failCommands: [] };
    const next: FaultConfig = {
      connected: patch.connected ?? current.connected,
      commandDelays: patch.commandDelays ? { ...patch.commandDelays } : current.commandDelays,
      failCommands: patch.failCommands ? [...patch.failCommands] : current.failCommands,
    };
    this.configs.set(keyOf(kind, target), next);
    return next;
  }

  delete(kind: TargetKind, target: string): void {
    this.configs.delete(keyOf(kind, target));
  }

  clear(): void {
    this.configs.clear();
  }

  async before(kind: TargetKind, target: string, path: string, signal: AbortSignal): Promise<string | undefined> {
    if (target === '') return undefined;
    const config = this.get(kind, target);
    if (!config) return undefined;
    if (!config.connected) throw new DropConnection(`${kind} ${target} is disconnected`);
    const delayMs = config.commandDelays[path] ?? config.commandDelays[ANY_PATH];
    if (delayMs) await sleep(delayMs, signal);
    if (config.failCommands.includes(path) || config.failCommands.includes(ANY_PATH)) return `simulated failure of ${path}`;
    return undefined;
  }
}

function keyOf(kind: TargetKind, target: string): string {
  return `${kind}\u0000${target}`;
}
