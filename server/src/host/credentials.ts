// SSH passwords and keys (KVM hosts, SFTP backup storage) are stored sealed with AES-256-GCM, so a database dump
// alone does not reveal them. The key comes from ZSTACK_CREDENTIAL_KEY, else the agent secret.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const keyOf = (secret: string) => createHash('sha256').update(`zstack-ts credential key:${secret}`).digest();

export function sealCredential(plain: string, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(secret), iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `v1:${Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64')}`;
}

export function openCredential(sealed: string, secret: string): string {
  const raw = Buffer.from(sealed.replace(/^v1:/, ''), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', keyOf(secret), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}

export const credentialSecret = (agentSecret?: string) => process.env.ZSTACK_CREDENTIAL_KEY ?? agentSecret ?? 'zstack-ts';
