// Deletion cascade, as upstream's CascadeExtension graph: each resource kind names its parents and how to find
// its own rows under given parent rows. Deleting a resource first checks the whole dependent tree (Permissive:
// any node may veto with a clear error), then deletes children before parents. Enforcing skips the checks.
import { ApiError } from './errors.js';

export type DeleteMode = 'Permissive' | 'Enforcing';

export interface CascadeNode {
  kind: string;
  /** For each parent kind: the uuids of this kind that live under the given parent uuids. */
  parents: Record<string, (parentUuids: string[], parentKind: string) => Promise<string[]>>;
  /** Permissive mode: throw to refuse (e.g. a running VM on storage being deleted). */
  check?(uuids: string[], rootKind: string): Promise<void>;
  /** Deletes (or, as for VM NICs on an L3, detaches) these resources; their children are already gone. */
  delete(uuids: string[], rootKind: string, mode: DeleteMode): Promise<void>;
}

/**
 * Run before a deletion of its kind is planned: stops new work from landing on the resources (e.g. VM placements on
 * a host being deleted) and waits for what is landing right now, so the plan sees it and cascades it. Returns the undo,
 * run when the deletion fails.
 */
export type Fence = (uuids: string[]) => Promise<() => Promise<void>>;

export class Cascade {
  private nodes = new Map<string, CascadeNode>();
  private fences = new Map<string, Fence>();

  register(node: CascadeNode): void {
    this.nodes.set(node.kind, node);
  }

  fence(kind: string, fence: Fence): void {
    this.fences.set(kind, fence);
  }

  /** Deletes `uuids` of `kind` (a registered node) and everything under them. */
  async delete(kind: string, uuids: string[], mode: DeleteMode = 'Permissive'): Promise<void> {
    if (uuids.length === 0) return;
    const undo = await this.fences.get(kind)?.(uuids);
    try {
      await this.deleteFenced(kind, uuids, mode);
    } catch (e) {
      await undo?.().catch((u) => console.error(`[cascade] undoing the fence of ${kind} failed: ${u instanceof Error ? u.message : u}`));
      throw e;
    }
  }

  private async deleteFenced(kind: string, uuids: string[], mode: DeleteMode): Promise<void> {
    const plan = await this.plan(kind, uuids, kind, new Set());
    if (mode === 'Permissive') {
      for (const { node, uuids: ids } of plan) await node.check?.(ids, kind);
    }
    for (const { node, uuids: ids } of plan) {
      try {
        await node.delete(ids, kind, mode);
      } catch (e) {
        if (mode === 'Permissive' || !(e instanceof ApiError)) throw e;
        console.error(`[cascade] enforcing delete of ${node.kind} ignored an error: ${e.message}`);
      }
    }
  }

  /** Children first, each kind once per level. */
  private async plan(kind: string, uuids: string[], rootKind: string, seen: Set<string>): Promise<Array<{ node: CascadeNode; uuids: string[] }>> {
    const node = this.nodes.get(kind);
    if (!node) throw new Error(`cascade: unknown kind ${kind}`);
    const steps: Array<{ node: CascadeNode; uuids: string[] }> = [];
    for (const child of this.nodes.values()) {
      const finder = child.parents[kind];
      if (!finder || seen.has(`${child.kind}<${kind}`)) continue;
      const ids = await finder(uuids, kind);
      if (ids.length) steps.push(...(await this.plan(child.kind, ids, rootKind, new Set([...seen, `${child.kind}<${kind}`]))));
    }
    steps.push({ node, uuids });
    return steps;
  }
}
