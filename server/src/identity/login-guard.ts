// Password log-ins: the same cost whether the account exists or not, and throttled per account name and per client.
//
// - Equal cost: a log-in for an unknown name verifies the password against a dummy scrypt hash made at start, so
//   both answers take one database read plus one scrypt (the timing tells nothing about which names exist).
// - Throttling (per management node, in memory): after `identity/login.maxFailuresPerAccount` failed log-ins for
//   one account name (5) or `identity/login.maxFailuresPerClient` from one client address (20) within
//   `identity/login.failureWindow` seconds (60), further attempts for that name / from that address are refused
//   without checking the password, until the oldest counted failure leaves the window: HTTP 429, `ID.1100`,
//   `Retry-After` and `opaque.retryAfterSeconds`. Unknown names count like known ones. A success clears its name's
//   failures. At most 2 password checks run at once (scrypt is CPU-bound, 2 cores); 64 more may wait, beyond that
//   a log-in is refused with the same `ID.1100` so a flood of log-ins cannot starve the other APIs.
import { ApiError, errorCode } from '../core/errors.js';
import type { GlobalConfigService } from '../core/global-config.js';
import { hashPassword, verifyPassword } from './passwords.js';

const MAX_CONCURRENT_CHECKS = 2;
const MAX_WAITING_CHECKS = 64;

export function throttled(details: string, retryAfterSeconds: number): ApiError {
  const e = new ApiError(errorCode('ID.1100', details), 429);
  e.error.opaque = { retryAfterSeconds };
  return e;
}

export class LoginGuard {
  /** Failure times (ms) per key (`a:<name>`, `c:<address>`), oldest first. */
  private failures = new Map<string, number[]>();
  private dummy: Promise<string>;
  private running = 0;
  private waiting: Array<() => void> = [];

  constructor(private config: GlobalConfigService) {
    config.define({
      category: 'identity',
      name: 'login.maxFailuresPerAccount',
      type: 'int',
      defaultValue: '5',
      min: 1,
      max: 1000,
      description: 'Failed log-ins for one account name within login.failureWindow before further attempts are refused (ID.1100)',
    });
    config.define({
      category: 'identity',
      name: 'login.maxFailuresPerClient',
      type: 'int',
      defaultValue: '20',
      min: 1,
      max: 100000,
      description: 'Failed log-ins from one client address within login.failureWindow before further attempts are refused (ID.1100)',
    });
    config.define({
      category: 'identity',
      name: 'login.failureWindow',
      type: 'seconds',
      defaultValue: '60',
      min: 1,
      max: 86400,
      description: 'Seconds a failed log-in counts against its account name and client address',
    });
    this.dummy = hashPassword('unknown-account-dummy-password');
  }

  /** Verifies `digest` against `stored` (or the dummy when undefined), counting a failure against `keys`. */
  async verify(keys: string[], digest: string, stored: string | undefined): Promise<boolean> {
    const ok = await this.limited(async () => (await verifyPassword(digest, stored ?? (await this.dummy))) && stored !== undefined);
    if (ok) this.failures.delete(keys[0]);
    else this.recordFailure(keys);
    return ok;
  }

  /** Keys of a log-in: its account name and its client address. */
  keys(name: string, client: string | undefined): string[] {
    return [`a:${name.toLowerCase()}`, ...(client ? [`c:${client}`] : [])];
  }

  /** Throws ID.1100 when any key has too many recent failures. */
  refuseIfThrottled(keys: string[]): void {
    const windowMs = this.config.getMs('identity', 'login.failureWindow');
    const now = Date.now();
    for (const key of keys) {
      const list = this.recent(key, now, windowMs);
      const max = this.config.getNumber('identity', key.startsWith('a:') ? 'login.maxFailuresPerAccount' : 'login.maxFailuresPerClient');
      if (list.length >= max) {
        const retryAfterSeconds = Math.max(1, Math.ceil((list[list.length - max] + windowMs - now) / 1000));
        throw throttled(
          key.startsWith('a:')
            ? `too many failed log-ins for this account name; retry in ${retryAfterSeconds} s`
            : `too many failed log-ins from this client; retry in ${retryAfterSeconds} s`,
          retryAfterSeconds,
        );
      }
    }
  }

  private recent(key: string, now: number, windowMs: number): number[] {
    const list = this.failures.get(key);
    if (!list) return [];
    while (list.length && list[0] <= now - windowMs) list.shift();
    if (!list.length) this.failures.delete(key);
    return list;
  }

  private recordFailure(keys: string[]): void {
    const now = Date.now();
    for (const key of keys) {
      const list = this.failures.get(key) ?? [];
      list.push(now);
      // Only what the largest threshold can need is kept.
      if (list.length > 100_000) list.shift();
      this.failures.set(key, list);
    }
    // The map stays bounded: names nobody retries leave when their window has passed.
    if (this.failures.size > 50_000) {
      const windowMs = this.config.getMs('identity', 'login.failureWindow');
      for (const key of [...this.failures.keys()]) this.recent(key, now, windowMs);
    }
  }

  /** At most MAX_CONCURRENT_CHECKS password checks at once; more wait (up to MAX_WAITING_CHECKS), beyond: ID.1100. */
  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= MAX_CONCURRENT_CHECKS) {
      if (this.waiting.length >= MAX_WAITING_CHECKS) throw throttled('too many log-ins at once; retry in a second', 1);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
