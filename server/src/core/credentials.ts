// SSH credentials (KVM hosts, SFTP backup storage) and the secret each deployed agent demands are stored sealed
// with AES-256-GCM, so a database dump alone does not reveal them.
//
// The key: ZSTACK_CREDENTIAL_KEY when set (give every management node the same value), else a random key kept in
// `<dataDir>/credential.key` (created on first use, mode 0600; nodes sharing a data directory share it). It used to
// be derived from the agent secret, which `npm start` regenerates at every start (sealed rows became unreadable
// after a restart) and which falls back to a constant: rows sealed that way are still opened (legacy keys).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DomainContext } from './domain.js';
import { err } from './errors.js';

const keyOf = (secret: string) => createHash('sha256').update(`zstack-ts credential key:${secret}`).digest();

export function sealCredential(plain: string, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(secret), iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `v1:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64')}`;
}

export function openCredential(sealed: string, secret: string): string {
  const raw = Buffer.from(sealed.replace(/^v\d:/, ''), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', keyOf(secret), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}

/** What one sealed `credential` column holds. */
export interface SshCredentials {
  password?: string;
  /** OpenSSH/PEM private key text. */
  privateKey?: string;
  /** The secret the agent deployed on that machine demands (`Authorization: Bearer …`). */
  agentSecret?: string;
}

/** A fresh per-agent secret. */
export const newAgentSecret = () => randomBytes(24).toString('base64url');

const KEY_FILE = 'credential.key';

export class CredentialVault {
  private key?: string;
  private readonly opened = new Map<string, SshCredentials>();

  constructor(
    private readonly dataDir: string,
    /** Keys rows may have been sealed with before the key file existed. */
    private readonly legacyKeys: string[],
  ) {}

  /** `v2:` + the sealed JSON of the credentials. */
  seal(c: SshCredentials): string {
    const plain = JSON.stringify({ password: c.password, privateKey: c.privateKey, agentSecret: c.agentSecret });
    return `v2:${sealCredential(plain, this.currentKey()).slice(3)}`;
  }

  /** The credentials of a sealed column; SYS.1006 naming `owner` when it cannot be opened (another key). */
  open(sealed: string, owner: string): SshCredentials {
    const cached = this.opened.get(sealed);
    if (cached) return cached;
    const keys = [this.currentKey(), ...this.legacyKeys];
    for (const key of keys) {
      let plain: string;
      try {
        plain = openCredential(sealed, key);
      } catch {
        continue;
      }
      // v1 sealed the bare password (SFTP backup storage before the deployer).
      const c: SshCredentials = sealed.startsWith('v2:') ? (JSON.parse(plain) as SshCredentials) : { password: plain };
      if (this.opened.size > 10_000) this.opened.clear();
      this.opened.set(sealed, c);
      return c;
    }
    throw err(
      'SYS.1006',
      `cannot open the stored credentials of ${owner}: they were sealed with another key (set ZSTACK_CREDENTIAL_KEY to the same value on every management node, or keep ${KEY_FILE} in the data directory)`,
    );
  }

  /** Like open, but undefined instead of an error (callers that can do without, e.g. a ping). */
  tryOpen(sealed: string | null | undefined, owner: string): SshCredentials | undefined {
    if (!sealed) return undefined;
    try {
      return this.open(sealed, owner);
    } catch {
      return undefined;
    }
  }

  private currentKey(): string {
    if (this.key) return this.key;
    const fromEnv = process.env.ZSTACK_CREDENTIAL_KEY;
    if (fromEnv) return (this.key = fromEnv);
    const file = join(this.dataDir, KEY_FILE);
    try {
      this.key = readFileSync(file, 'utf8').trim();
    } catch {
      mkdirSync(this.dataDir, { recursive: true });
      const fresh = randomBytes(32).toString('base64url');
      try {
        writeFileSync(file, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
        this.key = fresh;
      } catch {
        this.key = readFileSync(file, 'utf8').trim(); // another node of this data directory wrote it first
      }
    }
    if (!this.key) throw err('SYS.1006', `the credential key file ${file} is empty`);
    return this.key;
  }
}

const vaults = new WeakMap<object, CredentialVault>();

/** The vault of a management node (one per node: keyed by its options, shared by every module's context). */
export function credentialVault(app: DomainContext): CredentialVault {
  let v = vaults.get(app.options);
  if (!v) {
    const legacy = [app.options.agentSecret, 'zstack-ts'].filter((k): k is string => !!k);
    v = new CredentialVault(app.options.dataDir, legacy);
    vaults.set(app.options, v);
  }
  return v;
}
