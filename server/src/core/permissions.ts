// Who may call what, in one place, driven by each operation's `x-zstack-permission` in the spec (upstream 1.1's
// identity interceptor): sessions of SystemAdmin accounts may do everything; Normal accounts may not call adminOnly
// APIs, and the resources a call names in its `operate` fields must be theirs, in its `use` fields theirs or shared
// with them; their queries see only what they own or were shared (the query engine's `accountScope`). A user's
// session (LogInByUser) is in addition checked against the policies of the user and its groups: a Deny statement
// matching the action wins, then an Allow is needed. Creating calls record the caller's account as owner of what
// they created (AccountResourceRef), see `recordCreated`.
import { sql } from 'drizzle-orm';
import { rows, type Db } from '../db/index.js';
import type { SessionInfo } from './context.js';
import { requireUnusedUuid, type TableOfInventory } from './create.js';
import { err } from './errors.js';
import { Batcher } from './batcher.js';
import type { Handler } from './handlers.js';
import type { PermissionDef, SpecOperation } from './spec.js';

interface OwnedRef {
  uuid: string;
  type: string;
  account: string;
  /** Nested resources of an existing inventory: owned by that inventory's owner. */
  parent?: string;
}

export interface Statement {
  name?: string;
  effect: 'Allow' | 'Deny';
  actions: string[];
}

/** `vm:*`, `*`, `vm:CreateVmInstance`: `*` stands for any characters. */
export function actionMatches(pattern: string, action: string): boolean {
  if (pattern === action || pattern === '*') return true;
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(action);
}

/** Upstream's policy evaluation: any matching Deny → denied; else any matching Allow → allowed; else denied. */
export function evaluateStatements(statements: Statement[], action: string): 'Allow' | 'Deny' | undefined {
  let allowed = false;
  for (const s of statements) {
    if (!s.actions.some((p) => actionMatches(p, action))) continue;
    if (s.effect === 'Deny') return 'Deny';
    allowed = true;
  }
  return allowed ? 'Allow' : undefined;
}

const denied = (text: string) => err('ID.1002', text);

/** The uuids a message names in `fields` (strings and lists of strings; anything else is the validator's concern). */
function uuidsIn(msg: Record<string, unknown>, fields: string[] | undefined): string[] {
  const out: string[] = [];
  for (const f of fields ?? []) {
    const v = msg[f];
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') out.push(x);
  }
  return out;
}

/** `VmInstanceInventory` → `VmInstanceVO` (upstream's resource types). */
export const resourceTypeOf = (inventory: string) => inventory.replace(/Inventory$/, 'VO');

export interface QuotaGuard {
  /** Operations whose creations count against quotas. */
  operations: Set<string>;
  /** Throws when the call would pass one of the account's quotas. */
  check(operationId: string, msg: Record<string, unknown>, accountUuid: string): Promise<void>;
  /** Runs `fn` holding the account's lock (across management nodes). */
  withAccountLock<T>(accountUuid: string, fn: () => Promise<T>): Promise<T>;
}

export class Permissions {
  private byId = new Map<string, SpecOperation>();

  constructor(
    private db: Db,
    private doc: Record<string, any>,
    operations: SpecOperation[],
    private quota?: QuotaGuard,
  ) {
    for (const op of operations) this.byId.set(op.operationId, op);
  }

  /** Sets the quota guard (the identity module owns quotas). */
  guardQuotas(quota: QuotaGuard): void {
    this.quota = quota;
  }

  permissionOf(operationId: string): PermissionDef | undefined {
    return this.byId.get(operationId)?.permission;
  }

  /**
   * The check every call passes before its own (router, once per call): throws 403 ID.1002 when the session may
   * not make it; for a Normal account's query, scopes it to what the account may see.
   */
  async authorize(op: SpecOperation, session: SessionInfo | undefined, msg: Record<string, unknown>): Promise<void> {
    if (op.x.public || !session) return;
    const p = op.permission;
    if (session.userUuid) {
      const decision = await this.policyDecision(session.userUuid, p.action);
      if (decision !== 'Allow') {
        throw denied(`user[uuid:${session.userUuid}] is not allowed ${p.action}: ${decision === 'Deny' ? 'a policy denies it' : 'no policy allows it'}`);
      }
    }
    if (session.accountType === 'SystemAdmin') return;
    if (p.adminOnly) throw denied(`${op.operationId} is for admin accounts only`);
    if (op.x.kind === 'query' || op.x.legacy) {
      msg.accountScope = session.accountUuid;
      return;
    }
    await this.checkResources(session.accountUuid, uuidsIn(msg, p.operate), uuidsIn(msg, p.use));
  }

  /** Each of `operate` must be owned by the account (or be the account); each of `use` owned or shared with it. */
  async checkResources(accountUuid: string, operate: string[], use: string[]): Promise<void> {
    const all = [...new Set([...operate, ...use])].filter((u) => u !== accountUuid);
    if (!all.length) return;
    const found = await rows<{ resource_uuid: string; owned: boolean }>(
      this.db,
      sql`SELECT resource_uuid, TRUE AS owned FROM account_resource_refs WHERE resource_uuid = ANY(${sql.param(all)}::text[]) AND account_uuid = ${accountUuid}
          UNION ALL
          SELECT resource_uuid, FALSE FROM shared_resources WHERE resource_uuid = ANY(${sql.param(all)}::text[]) AND (receiver_account_uuid = ${accountUuid} OR to_public)`,
    );
    const owned = new Set(found.filter((r) => r.owned).map((r) => r.resource_uuid));
    const reachable = new Set(found.map((r) => r.resource_uuid));
    for (const u of operate) {
      if (u !== accountUuid && !owned.has(u)) throw denied(`account[uuid:${accountUuid}] has no permission to operate on resource[uuid:${u}]`);
    }
    for (const u of use) {
      if (u !== accountUuid && !reachable.has(u)) throw denied(`account[uuid:${accountUuid}] has no access to resource[uuid:${u}]`);
    }
  }

  /** The combined verdict of the user's own and its groups' policies on `action`. */
  async policyDecision(userUuid: string, action: string): Promise<'Allow' | 'Deny' | undefined> {
    const found = await rows<{ statements: Statement[] }>(
      this.db,
      sql`SELECT p.statements FROM policies p WHERE p.uuid IN (
            SELECT policy_uuid FROM user_policy_refs WHERE user_uuid = ${userUuid}
            UNION SELECT gp.policy_uuid FROM user_group_policy_refs gp JOIN user_group_user_refs gu ON gu.group_uuid = gp.group_uuid WHERE gu.user_uuid = ${userUuid})`,
    );
    return evaluateStatements(
      found.flatMap((r) => (typeof r.statements === 'string' ? JSON.parse(r.statements) : r.statements) as Statement[]),
      action,
    );
  }

  /**
   * After a creating call succeeded: its account owns the created inventory (and the nested ones its `owns` names;
   * for a call that creates nothing itself, e.g. AttachL3NetworkToVm's new NIC, the nested ones go to the owner of
   * the inventory they belong to). A resource already owned keeps its owner. Concurrent calls share one statement.
   */
  async recordCreated(op: SpecOperation, session: SessionInfo | undefined, result: unknown): Promise<void> {
    if (!session) return;
    const refs = this.createdBy(op, result).map((r) => ({ ...r, account: session.accountUuid, parent: op.x.create ? undefined : r.parent }));
    if (refs.length) await this.refInserts.add(refs);
  }

  private refInserts = new Batcher<OwnedRef[], void>(async (batches) => {
    const refs = batches.flat();
    await this.db.execute(
      sql`INSERT INTO account_resource_refs (resource_uuid, resource_type, account_uuid, owner_account_uuid)
          SELECT DISTINCT ON (x.u) x.u, x.t, coalesce(p.account_uuid, x.a), coalesce(p.account_uuid, x.a)
          FROM unnest(${sql.param(refs.map((r) => r.uuid))}::text[], ${sql.param(refs.map((r) => r.type))}::text[], ${sql.param(refs.map((r) => r.account))}::text[], ${sql.param(refs.map((r) => r.parent ?? null))}::text[]) AS x(u, t, a, parent)
          LEFT JOIN account_resource_refs p ON p.resource_uuid = x.parent
          ON CONFLICT (resource_uuid) DO NOTHING`,
    );
    return batches.map(() => undefined);
  });

  /** The resources a creating call's reply names: `{inventory}` (or `{inventories}`) and their `owns` fields. */
  createdBy(op: SpecOperation, result: unknown): Array<{ uuid: string; type: string; parent?: string }> {
    const r = result as { inventory?: unknown; inventories?: unknown[] } | undefined;
    const invs = (r?.inventory ? [r.inventory] : (r?.inventories ?? [])) as Array<Record<string, unknown>>;
    const schemaName = this.replyInventory(op);
    if (!schemaName) return [];
    const out: Array<{ uuid: string; type: string; parent?: string }> = [];
    const schema = this.doc.components.schemas[schemaName];
    for (const inv of invs) {
      if (typeof inv?.uuid === 'string') out.push({ uuid: inv.uuid, type: resourceTypeOf(schemaName) });
      for (const field of op.permission.owns ?? []) {
        const nested = (schema?.properties?.[field]?.items?.$ref as string | undefined)?.split('/').pop();
        for (const child of (inv[field] as Array<Record<string, unknown>> | undefined) ?? []) {
          if (typeof child?.uuid === 'string') out.push({ uuid: child.uuid, type: resourceTypeOf(nested ?? field), parent: inv.uuid as string });
        }
      }
    }
    return out;
  }

  /** The inventory schema a call's reply carries (`inventory` or `inventories`). */
  replyInventory(op: SpecOperation): string | undefined {
    if (op.x.reply && op.x.reply !== 'empty') return op.x.reply;
    const ref = this.resolve(op.pointer)?.responses?.['200']?.content?.['application/json']?.schema?.$ref as string | undefined;
    const reply = ref ? this.resolve(ref) : undefined;
    const inner = (reply?.properties?.inventory?.$ref ?? reply?.properties?.inventories?.items?.$ref) as string | undefined;
    return inner?.split('/').pop();
  }

  /** A `#/a/b~1c` JSON pointer into the spec. */
  private resolve(pointer: string): any {
    let node: any = this.doc;
    for (const part of pointer.replace(/^#\//, '').split('/')) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    return node;
  }

  /**
   * The handlers with ownership recording added to every creating operation (`x-zstack.create`, or an operation
   * whose permission names `owns`): the shared create path, so no domain records ownership itself. A Normal
   * account's creation counted by quotas runs under the account's lock, from the quota check until its resource is
   * recorded, so concurrent creations cannot pass the quota together. A creating operation's `resourceUuid` that
   * names an existing resource of its inventory's table is refused before the handler's own check (core/create.ts).
   */
  withOwnership(handlers: Map<string, Handler<any>>, tableOf: TableOfInventory = () => undefined): Map<string, Handler<any>> {
    // Looked up at each call (a handler replaced in `handlers` later, as tests do, is the one that runs), each
    // handler wrapped once.
    const wrapped = new WeakMap<Handler<any>, Handler<any>>();
    const wrap = (id: string, h: Handler<any>): Handler<any> => {
      let w = wrapped.get(h);
      if (!w) wrapped.set(h, (w = this.ownedHandler(id, h, tableOf)));
      return w;
    };
    return new (class extends Map<string, Handler<any>> {
      override get(id: string) {
        const h = handlers.get(id);
        return h && wrap(id, h);
      }
      override has(id: string) {
        return handlers.has(id);
      }
    })();
  }

  private ownedHandler(id: string, h: Handler<any>, tableOf: TableOfInventory): Handler<any> {
    {
      const op = this.byId.get(id);
      // Creating operations record what they create; quota-counted ones (also ChangeInstanceOffering) check first.
      const records = Boolean(op && (op.x.create || op.permission.owns));
      if (!op || !(records || this.quota?.operations.has(id))) return h;
      const inventory = op.x.create ? this.replyInventory(op) : undefined;
      const table = inventory ? tableOf(inventory) : undefined;
      return {
        check: table
          ? async (msg, call) => {
              await requireUnusedUuid(this.db, table, (msg as { resourceUuid?: string }).resourceUuid);
              return h.check?.(msg, call);
            }
          : h.check?.bind(h),
        run: async (msg, call, checked) => {
          const session = call.session;
          const work = async () => {
            if (counted) await this.quota!.check(id, msg, session!.accountUuid);
            const result = await h.run(msg, call, checked);
            if (records) await this.recordCreated(op, session, result);
            return result;
          };
          const counted = Boolean(this.quota?.operations.has(id) && session && session.accountType !== 'SystemAdmin');
          return counted ? this.quota!.withAccountLock(session!.accountUuid, work) : work();
        },
      };
    }
  }
}
