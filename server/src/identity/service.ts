// Accounts and sessions: the admin account is bootstrapped, sessions expire after `identity/session.timeout`
// seconds of idleness (each use slides the expiry, at most once a minute).
import { and, eq, lt } from 'drizzle-orm';
import type { Db } from '../db/index.js';
import { accounts, quotas, sessions, users } from '../db/schema/index.js';
import { QUOTA_DEFAULTS } from './quotas.js';
import type { SessionInfo } from '../core/context.js';
import { err } from '../core/errors.js';
import type { GlobalConfigService } from '../core/global-config.js';
import { newUuid } from '../core/ids.js';
import { hashPassword, sha512 } from './passwords.js';
import { LoginGuard } from './login-guard.js';

export const ADMIN_UUID = '36c27e8ff05c4780bf6d2fa65700f22e';

export class IdentityService {
  /** Equal-cost, throttled password checks (login-guard.ts). */
  readonly logins: LoginGuard;

  constructor(
    private db: Db,
    private config: GlobalConfigService,
  ) {
    this.logins = new LoginGuard(config);
    config.define({
      category: 'identity',
      name: 'session.timeout',
      type: 'seconds',
      defaultValue: '7200',
      min: 60,
      max: 31536000,
      description: 'Seconds a session stays valid without use',
    });
    config.define({
      category: 'identity',
      name: 'session.cleanup.interval',
      type: 'seconds',
      defaultValue: '3600',
      min: 1,
      description: 'How often expired sessions are deleted',
    });
  }

  /** Creates the built-in admin (password `password`) unless it exists. */
  async bootstrap(): Promise<void> {
    await this.db
      .insert(accounts)
      .values({ uuid: ADMIN_UUID, name: 'admin', passwordHash: await hashPassword(sha512('password')), type: 'SystemAdmin' })
      .onConflictDoNothing();
  }

  /** A password log-in: equal cost for unknown names, throttled per name and per client (login-guard.ts). */
  async logIn(accountName: string, digest: string, client?: string) {
    const keys = this.logins.keys(accountName, client);
    this.logins.refuseIfThrottled(keys);
    const [account] = await this.db.select().from(accounts).where(eq(accounts.name, accountName));
    if (!(await this.logins.verify(keys, digest, account?.passwordHash))) {
      throw err('ID.1000', 'wrong account name or password');
    }
    const [session] = await this.db
      .insert(sessions)
      .values({ uuid: newUuid(), accountUuid: account.uuid, userUuid: account.uuid, userType: 'AccountVO', expiredDate: this.expiry() })
      .returning();
    return session;
  }

  /** LogInByUser: the account named by name or uuid, then its user by name. */
  async logInByUser(p: { accountName?: string; accountUuid?: string; userName: string; password: string }, client?: string) {
    if (!p.accountName && !p.accountUuid) throw err('SYS.1007', 'accountName or accountUuid is required');
    // Throttled and timed as account log-ins are (login-guard.ts), per account/user name.
    const keys = this.logins.keys(`${p.accountUuid ?? p.accountName}/${p.userName}`, client);
    this.logins.refuseIfThrottled(keys);
    const [account] = await this.db
      .select({ uuid: accounts.uuid })
      .from(accounts)
      .where(p.accountUuid ? eq(accounts.uuid, p.accountUuid) : eq(accounts.name, p.accountName!));
    const [user] = account
      ? await this.db
          .select()
          .from(users)
          .where(and(eq(users.accountUuid, account.uuid), eq(users.name, p.userName)))
      : [];
    if (!(await this.logins.verify(keys, p.password, user?.passwordHash)) || !user) throw err('ID.1000', 'wrong account, user name or password');
    const [session] = await this.db
      .insert(sessions)
      .values({ uuid: newUuid(), accountUuid: user.accountUuid, userUuid: user.uuid, userType: 'UserVO', expiredDate: this.expiry() })
      .returning();
    return session;
  }

  async logOut(uuid: string): Promise<void> {
    await this.db.delete(sessions).where(eq(sessions.uuid, uuid));
  }

  async isValid(uuid: string): Promise<boolean> {
    const [s] = await this.db.select({ expiredDate: sessions.expiredDate }).from(sessions).where(eq(sessions.uuid, uuid));
    return Boolean(s && s.expiredDate.getTime() > Date.now());
  }

  /** `Authorization: OAuth <uuid>` → the session, or 401 ID.1001. */
  async authenticate(header: string | undefined): Promise<SessionInfo> {
    const m = /^OAuth\s+(\S+)\s*$/.exec(header ?? '');
    if (!m) throw err('ID.1001', "missing or malformed header 'Authorization: OAuth <session uuid>'; log in with LogInByAccount first");
    const [row] = await this.db
      .select({
        uuid: sessions.uuid,
        accountUuid: sessions.accountUuid,
        userUuid: sessions.userUuid,
        userType: sessions.userType,
        expiredDate: sessions.expiredDate,
        type: accounts.type,
      })
      .from(sessions)
      .innerJoin(accounts, eq(accounts.uuid, sessions.accountUuid))
      .where(eq(sessions.uuid, m[1]));
    if (!row || row.expiredDate.getTime() <= Date.now()) throw err('ID.1001', `session[uuid:${m[1]}] is not valid or has expired; log in again`);
    const fresh = this.expiry();
    if (fresh.getTime() - row.expiredDate.getTime() > 60_000) {
      await this.db.update(sessions).set({ expiredDate: fresh }).where(eq(sessions.uuid, row.uuid));
    }
    return { uuid: row.uuid, accountUuid: row.accountUuid, accountType: row.type, ...(row.userType === 'UserVO' ? { userUuid: row.userUuid } : {}) };
  }

  async purgeExpired(): Promise<number> {
    const gone = await this.db.delete(sessions).where(lt(sessions.expiredDate, new Date())).returning({ uuid: sessions.uuid });
    return gone.length;
  }

  async createAccount(p: { name: string; password: string; type?: string; description?: string; resourceUuid?: string }) {
    const [exists] = await this.db.select({ uuid: accounts.uuid }).from(accounts).where(eq(accounts.name, p.name));
    if (exists) throw err('SYS.1007', `an account named [${p.name}] already exists`);
    const [row] = await this.db
      .insert(accounts)
      .values({
        uuid: p.resourceUuid ?? newUuid(),
        name: p.name,
        passwordHash: await hashPassword(p.password),
        type: p.type ?? 'Normal',
        description: p.description ?? null,
      })
      .returning();
    // Every quota of the new account, at the defaults (QueryQuota lists them; UpdateQuota changes them).
    await this.db
      .insert(quotas)
      .values(Object.entries(QUOTA_DEFAULTS).map(([name, value]) => ({ uuid: newUuid(), identityUuid: row.uuid, name, value })))
      .onConflictDoNothing();
    return row;
  }

  async updateAccount(uuid: string, p: { name?: string; description?: string; password?: string }) {
    const set: Partial<typeof accounts.$inferInsert> = { lastOpDate: new Date() };
    if (p.name !== undefined) {
      const [clash] = await this.db.select({ uuid: accounts.uuid }).from(accounts).where(eq(accounts.name, p.name));
      if (clash && clash.uuid !== uuid) throw err('SYS.1007', `an account named [${p.name}] already exists`);
      set.name = p.name;
    }
    if (p.description !== undefined) set.description = p.description;
    if (p.password !== undefined) set.passwordHash = await hashPassword(p.password);
    const [row] = await this.db.update(accounts).set(set).where(eq(accounts.uuid, uuid)).returning();
    return row;
  }

  private expiry(): Date {
    return new Date(Date.now() + this.config.getNumber('identity', 'session.timeout') * 1000);
  }

  sessionIsAdmin(s: SessionInfo | undefined): boolean {
    return s?.accountType === 'SystemAdmin';
  }

  async findAccount(uuid: string) {
    const [row] = await this.db
      .select()
      .from(accounts)
      .where(and(eq(accounts.uuid, uuid)));
    return row;
  }
}
