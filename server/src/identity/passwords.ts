import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

/** What upstream clients send as `password`: the SHA-512 hex digest of the clear password. */
export const sha512 = (clear: string) => createHash('sha512').update(clear).digest('hex');

/** We store only a scrypt hash of that digest. */
export async function hashPassword(digest: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(digest, salt, 32);
  return `scrypt$${salt.toString('hex')}$${hash.toString('hex')}`;
}

export async function verifyPassword(digest: string, stored: string): Promise<boolean> {
  const [scheme, saltHex, hashHex] = stored.split('$');
  if (scheme !== 'scrypt' || !saltHex || !hashHex) return false;
  const hash = await scryptAsync(digest, Buffer.from(saltHex, 'hex'), 32);
  const expected = Buffer.from(hashHex, 'hex');
  return hash.length === expected.length && timingSafeEqual(hash, expected);
}
