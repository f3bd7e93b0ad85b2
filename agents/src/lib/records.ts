// The commands an agent received, per target, bounded so that 10,000 simulated resources stay cheap.
import type { CommandRecord, TargetKind } from './protocol.js';

export class RecordStore {
  private readonly byTarget = new Map<string, CommandRecord[]>();

  constructor(private readonly limitPerTarget = 200) {}

  add(kind: TargetKind, record: CommandRecord): void {
    const key = keyOf(kind, record.target);
    let list = this.byTarget.get(key);
    if (!list) this.byTarget.set(key, (list = []));
    list.push(record);
    if (list.length > this.limitPerTarget) list.splice(0, list.length - this.limitPerTarget);
  }

  /** Records of one target of one kind, oldest first. */
  list(kind: TargetKind, target: string, clear = false): CommandRecord[] {
    const key = keyOf(kind, target);
    const list = this.byTarget.get(key) ?? [];
    if (clear) this.byTarget.delete(key);
    return [...list];
  }

  /** Records of every kind, optionally of one target uuid, ordered by arrival time. */
  listAll(target?: string, clear = false): CommandRecord[] {
    const out: CommandRecord[] = [];
    for (const [key, list] of this.byTarget) {
      if (target !== undefined && list[0]?.target !== target) continue;
      out.push(...list);
      if (clear) this.byTarget.delete(key);
    }
    return out.sort((a, b) => a.time.localeCompare(b.time));
  }

  clear(): void {
    this.byTarget.clear();
  }
}

function keyOf(kind: TargetKind, target: string): string {
  return `${kind}\u0000${target}`;
}
