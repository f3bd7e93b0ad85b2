// Console access tokens, in memory: random, bound to one VM and VNC target, good for opening one connection,
// expiring, revocable. A refused token gets a precise reason (unknown, already used, expired, revoked); records of
// used, expired and revoked tokens are kept for a while after expiry so the reason stays precise, then forgotten.
import { randomBytes } from 'node:crypto';

export const DEFAULT_TOKEN_TTL_MS = 30 * 60_000; // console/vnc.token.timeout
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000; // console/proxy.idleTimeout
/** How long a record outlives its expiry (to tell "expired"/"revoked" from "unknown"). */
const RETAIN_AFTER_EXPIRY_MS = 60 * 60_000;

export type TokenState = 'fresh' | 'opening' | 'used' | 'revoked';

export interface ConsoleToken {
  token: string;
  vmUuid: string;
  targetHostname: string;
  targetPort: number;
  expiresAt: number;
  idleTimeoutMs: number;
  createdAt: number;
  state: TokenState;
}

export interface EstablishInput {
  token?: string;
  vmUuid: string;
  targetHostname: string;
  targetPort: number;
  expiresAt?: number;
  ttlMs?: number;
  idleTimeoutMs?: number;
}

/** A refusal: HTTP status for the upgrade (401 no/unknown token, 403 known but refused) and the reason. */
export interface Refusal {
  status: 401 | 403;
  reason: string;
}

export class TokenError extends Error {}

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

export class TokenStore {
  private readonly tokens = new Map<string, ConsoleToken>();

  constructor(private readonly now: () => number = Date.now) {}

  establish(input: EstablishInput): ConsoleToken {
    const now = this.now();
    const expiresAt = input.expiresAt ?? now + (input.ttlMs ?? DEFAULT_TOKEN_TTL_MS);
    if (expiresAt <= now) throw new TokenError(`expiresAt ${expiresAt} is not in the future`);
    const idleTimeoutMs = input.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (input.token !== undefined) {
      const existing = this.tokens.get(input.token);
      if (existing) {
        const sameBinding = existing.vmUuid === input.vmUuid && existing.targetHostname === input.targetHostname && existing.targetPort === input.targetPort;
        if (existing.state !== 'fresh' || existing.expiresAt <= now || !sameBinding) {
          throw new TokenError('token already exists; establish a new one');
        }
        // A retried establish: refresh the unused token.
        existing.expiresAt = expiresAt;
        existing.idleTimeoutMs = idleTimeoutMs;
        return existing;
      }
    }
    const record: ConsoleToken = {
      token: input.token ?? newToken(),
      vmUuid: input.vmUuid,
      targetHostname: input.targetHostname,
      targetPort: input.targetPort,
      expiresAt,
      idleTimeoutMs,
      createdAt: now,
      state: 'fresh',
    };
    this.tokens.set(record.token, record);
    return record;
  }

  get(token: string): ConsoleToken | undefined {
    return this.tokens.get(token);
  }

  /** Why this token cannot open a connection now; undefined = it can. */
  refusal(token: string | undefined | null): Refusal | undefined {
    if (!token) return { status: 401, reason: 'no token: connect to /?token=<token>' };
    const record = this.tokens.get(token);
    if (!record) return { status: 401, reason: 'unknown token' };
    switch (record.state) {
      case 'revoked':
        return { status: 403, reason: 'token revoked' };
      case 'used':
      case 'opening':
        return { status: 403, reason: 'token already used (a token opens one connection)' };
    }
    if (record.expiresAt <= this.now()) return { status: 403, reason: 'token expired' };
    return undefined;
  }

  /** Claims a fresh token for one opening attempt; the caller then calls opened() or release(). */
  claim(token: string | undefined | null): ConsoleToken | Refusal {
    const refusal = this.refusal(token);
    if (refusal) return refusal;
    const record = this.tokens.get(token!)!;
    record.state = 'opening';
    return record;
  }

  /** The claimed token opened its connection: it is spent. */
  opened(record: ConsoleToken): void {
    if (record.state === 'opening') record.state = 'used';
  }

  /** The opening attempt failed before a connection existed (target unreachable): the token stays good. */
  release(record: ConsoleToken): void {
    if (record.state === 'opening') record.state = 'fresh';
  }

  /** Revokes by token and/or VM; returns the revoked records (already revoked ones are not counted). */
  revoke(by: { token?: string; vmUuid?: string }): ConsoleToken[] {
    const out: ConsoleToken[] = [];
    const mark = (r: ConsoleToken) => {
      if (r.state === 'revoked') return;
      r.state = 'revoked';
      out.push(r);
    };
    if (by.token !== undefined) {
      const r = this.tokens.get(by.token);
      if (r) mark(r);
    }
    if (by.vmUuid !== undefined) {
      for (const r of this.tokens.values()) if (r.vmUuid === by.vmUuid) mark(r);
    }
    return out;
  }

  /** Tokens that can still open a connection. */
  availableCount(): number {
    const now = this.now();
    let n = 0;
    for (const r of this.tokens.values()) if (r.state === 'fresh' && r.expiresAt > now) n++;
    return n;
  }

  size(): number {
    return this.tokens.size;
  }

  /**
   * Forgets records long past expiry. `live` tells whether a token still has open connections (those stay, so
   * that revoking by token keeps working).
   */
  sweep(live: (token: string) => boolean = () => false): void {
    const limit = this.now() - RETAIN_AFTER_EXPIRY_MS;
    for (const [token, r] of this.tokens) {
      if (r.expiresAt <= limit && !live(token)) this.tokens.delete(token);
    }
  }
}
