// One ssh2 connection per deploy: exec with exit code and stderr, atomic SFTP writes, the host key seen
// (checked against the recorded one), and errors sorted into transient (retry) and final.
import { createHash, randomBytes } from 'node:crypto';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { TaskError, messageOf } from './errors.js';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  passphrase?: string;
  knownHostKey?: string;
}

export interface ExecResult {
  /** null when the command was killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Socket-level failures that a second try may not meet. Refused and unknown hosts are final: retrying only delays the error. */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'ENETRESET']);

export class SshSession {
  private sftpSession?: Promise<SFTPWrapper>;
  private readonly onAbort = () => this.client.destroy();
  /** The connection went away under us: failures after this are transient, whatever they say. */
  private lostConnection = false;
  private closing = false;
  /** Rejects when the connection drops: ssh2 leaves some SFTP callbacks (a write waiting on the window) uncalled. */
  private readonly dropped: Promise<never>;

  private constructor(
    private readonly client: Client,
    readonly hostKey: string,
    private readonly where: string,
    private readonly signal: AbortSignal,
  ) {
    // An abort cuts the connection: pending execs fail at once instead of running on.
    signal.addEventListener('abort', this.onAbort, { once: true });
    this.dropped = new Promise<never>((_, reject) => {
      client.on('close', () => {
        this.lostConnection = !this.closing;
        reject(lost(this.where, new Error('the connection closed')));
      });
    });
    this.dropped.catch(() => {}); // only a pending operation cares
  }

  static async connect(target: SshTarget, opts: { signal: AbortSignal; readyTimeoutMs: number }): Promise<SshSession> {
    const where = `${target.username}@${target.host}:${target.port}`;
    const client = new Client();
    let seenKey: string | undefined;
    let mismatch: string | undefined;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      password: target.password,
      privateKey: target.privateKey,
      passphrase: target.passphrase,
      readyTimeout: opts.readyTimeoutMs,
      keepaliveInterval: 5000,
      hostVerifier: (key: Buffer) => {
        seenKey = publicKeyText(key);
        if (target.knownHostKey && !sameHostKey(target.knownHostKey, seenKey)) {
          mismatch =
            `host key mismatch for ${target.host}:${target.port}: the host offered ${fingerprint(seenKey)}, ` +
            `the recorded key is ${fingerprint(target.knownHostKey)} (the host was reinstalled, or someone is in between); refusing to connect`;
          return false;
        }
        return true;
      },
    };
    return new Promise<SshSession>((resolve, reject) => {
      const onAbort = () => {
        client.destroy();
        reject(opts.signal.reason);
      };
      if (opts.signal.aborted) return onAbort();
      opts.signal.addEventListener('abort', onAbort, { once: true });
      client.once('ready', () => {
        opts.signal.removeEventListener('abort', onAbort);
        // Later connection errors reach pending execs through their channels closing; keep the process alive.
        client.on('error', () => {});
        resolve(new SshSession(client, seenKey ?? '', where, opts.signal));
      });
      client.once('error', (err: Error & { level?: string; code?: string }) => {
        opts.signal.removeEventListener('abort', onAbort);
        client.destroy();
        if (opts.signal.aborted) return reject(opts.signal.reason);
        if (mismatch) return reject(new TaskError(mismatch));
        reject(connectError(err, target, where));
      });
      try {
        client.connect(config);
      } catch (err) {
        // ssh2 throws synchronously for a malformed private key
        opts.signal.removeEventListener('abort', onAbort);
        reject(new TaskError(`cannot use the private key for ${where}: ${messageOf(err)}`));
      }
    });
  }

  /** Runs a command through the login shell; never throws for a non-zero exit. */
  exec(command: string): Promise<ExecResult> {
    return this.unlessDropped(
      new Promise((resolve, reject) => {
        this.client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
          if (err) return reject(lost(this.where, err));
          const stdout: Buffer[] = [];
          const stderr: Buffer[] = [];
          let code: number | null | undefined;
          stream.on('data', (chunk: Buffer) => stdout.push(chunk));
          stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
          stream.on('exit', (exitCode: number | null) => (code = exitCode));
          stream.on('close', () => {
            // A channel that closes without an exit status was cut by the connection going away.
            if (code === undefined) return reject(lost(this.where, new Error('the channel closed without an exit status')));
            resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
          });
          stream.end(); // no stdin: a command that reads it sees EOF instead of hanging
        });
      }),
    );
  }

  /** Runs a command and returns its stdout; a non-zero exit throws a TaskError with the code and stderr. */
  async run(command: string, what: string): Promise<string> {
    const result = await this.exec(command);
    if (result.code !== 0) {
      const code = result.code ?? -1;
      throw new TaskError(`${what} failed`, { exitCode: code, stderr: result.stderr || result.stdout });
    }
    return result.stdout;
  }

  /** Writes via a temporary name and an atomic rename, so a reader (or a crash) never sees half a file. */
  async writeFile(path: string, data: Buffer | string, mode: number): Promise<void> {
    const sftp = await this.sftp();
    const temp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    await this.unlessDropped(
      new Promise<void>((resolve, reject) => {
        sftp.writeFile(temp, data, { mode }, (err?: Error | null) => (err ? reject(this.sftpError(`write ${temp}`, err)) : resolve()));
      }),
    );
    await this.unlessDropped(
      new Promise<void>((resolve, reject) => {
        sftp.ext_openssh_rename(temp, path, (err?: Error | null) => (err ? reject(this.sftpError(`rename ${temp} to ${path}`, err)) : resolve()));
      }),
    );
  }

  close(): void {
    this.closing = true;
    this.signal.removeEventListener('abort', this.onAbort);
    this.client.end();
  }

  private unlessDropped<T>(operation: Promise<T>): Promise<T> {
    return Promise.race([operation, this.dropped]);
  }

  private sftpError(what: string, err: Error): TaskError {
    if (this.lostConnection) return lost(this.where, err);
    return new TaskError(`sftp ${what} failed: ${err.message}`, { stderr: err.message });
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= this.unlessDropped(
      new Promise((resolve, reject) => {
        this.client.sftp((err: Error | undefined, sftp: SFTPWrapper) => (err ? reject(lost(this.where, err)) : resolve(sftp)));
      }),
    );
    return this.sftpSession;
  }
}

/** `ssh-ed25519 AAAA…` from the key blob the server sent (its first field is the key type). */
export function publicKeyText(blob: Buffer): string {
  const typeLength = blob.readUInt32BE(0);
  return `${blob.subarray(4, 4 + typeLength).toString('latin1')} ${blob.toString('base64')}`;
}

/** OpenSSH's SHA256 fingerprint of `type base64` key text; a fingerprint is returned as is. */
export function fingerprint(key: string): string {
  if (key.startsWith('SHA256:')) return key;
  const base64 = key.trim().split(/\s+/)[1] ?? key;
  return `SHA256:${createHash('sha256').update(Buffer.from(base64, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

function sameHostKey(known: string, seen: string): boolean {
  return fingerprint(known) === fingerprint(seen);
}

function connectError(err: Error & { level?: string; code?: string }, target: SshTarget, where: string): TaskError {
  if (err.level === 'client-authentication') {
    const method = target.privateKey ? 'private key' : 'password';
    return new TaskError(`authentication failed for ${where} (${method} rejected)`);
  }
  if (err.level === 'client-timeout') return new TaskError(`no SSH handshake from ${where}: ${err.message}`, { transient: true });
  if (err.code && TRANSIENT_CODES.has(err.code)) return new TaskError(`cannot reach ${where}: ${err.message}`, { transient: true });
  if (err.code === 'ECONNREFUSED') return new TaskError(`cannot reach ${where}: connection refused (is sshd running on port ${target.port}?)`);
  if (err.level === 'client-dns') return new TaskError(`cannot resolve ${target.host}: ${err.message}`);
  return new TaskError(`cannot connect to ${where}: ${err.message}`, { transient: err.level === 'client-socket' });
}

function lost(where: string, err: Error): TaskError {
  return new TaskError(`the SSH connection to ${where} was lost: ${err.message}`, { transient: true });
}
