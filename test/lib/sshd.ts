// A real OpenSSH server for deployer tests: Debian's /usr/sbin/sshd on a free loopback port, with throwaway host
// keys, a throwaway user (password + authorized key) and its home under a temp dir. Needs root (sshd and useradd do).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SSHD_PATH = '/usr/sbin/sshd';

export interface TestSshd {
  host: '127.0.0.1';
  port: number;
  username: string;
  password: string;
  /** OpenSSH-format private key whose public half is authorized for `username`. */
  privateKey: string;
  /** The server's host public key, `ssh-ed25519 AAAA…` (what a deployer should record). */
  hostKey: string;
  /** The user's home: writable by it, a good place for install roots. */
  home: string;
  /** Last lines sshd printed (it runs with -e), for diagnosing failures. */
  log(): string;
  /** Stops sshd, kills what the test user still runs (deployed agents), removes the user and the temp dir. */
  stop(): Promise<void>;
}

/** Why sshd cannot run here, or undefined when it can: tests pass this to `t.skip`. */
export function sshdUnavailable(): string | undefined {
  try {
    accessSync(SSHD_PATH, constants.X_OK);
  } catch {
    return `${SSHD_PATH} is not installed (apt-get install openssh-server)`;
  }
  if (process.getuid?.() !== 0) return 'starting sshd and creating a test user needs root';
  return undefined;
}

export interface SshdOptions {
  /**
   * Also let root log in with the test user's key (real-VM tests deploy the kvm agent as root). Processes root
   * starts through it are the test's to end (by pid): stop() only ends the test user's.
   */
  rootByKey?: boolean;
}

export async function startSshd(opts: SshdOptions = {}): Promise<TestSshd> {
  const reason = sshdUnavailable();
  if (reason) throw new Error(reason);
  const dir = mkdtempSync(join(tmpdir(), 'zstack-sshd-'));
  chmodSync(dir, 0o755); // the test user must reach its home inside
  const username = `zts${randomBytes(4).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const home = join(dir, 'home');
  let child: ChildProcess | undefined;
  let userCreated = false;
  const cleanup = async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    if (userCreated) {
      await killProcessesOf(username);
      await run('userdel', ['-f', username]).catch(() => {});
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // One user per server: concurrent test files never fight over a password.
    await run('useradd', ['--no-user-group', '--gid', 'users', '--create-home', '--home-dir', home, '--shell', '/bin/bash', username]);
    userCreated = true;
    await chpasswd(username, password);

    const hostKeyPath = join(dir, 'ssh_host_ed25519_key');
    const userKeyPath = join(dir, 'user_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'zstack-test-host', '-f', hostKeyPath]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'zstack-test-user', '-f', userKeyPath]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${userKeyPath}.pub`));
    const hostKey = readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');

    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir sshd insists on
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKeyPath}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        opts.rootByKey ? `AllowUsers ${username} root` : `AllowUsers ${username}`,
        'StrictModes no', // the key files live in a temp dir, not in ~/.ssh
        'UsePAM no', // no PAM stack in a container; sshd checks /etc/shadow itself
        'PasswordAuthentication yes',
        'PubkeyAuthentication yes',
        'KbdInteractiveAuthentication no',
        opts.rootByKey ? 'PermitRootLogin prohibit-password' : 'PermitRootLogin no',
        'MaxStartups 200', // deployMany opens many connections at once
        'MaxSessions 64',
        'Subsystem sftp internal-sftp',
        'LogLevel INFO',
        '',
      ].join('\n'),
    );
    child = spawn(SSHD_PATH, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: string[] = [];
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      lines.push(...chunk.split('\n').filter(Boolean));
      if (lines.length > 200) lines.splice(0, lines.length - 200);
    });
    await waitForBanner(port, child, () => lines.join('\n'));
    return {
      host: '127.0.0.1',
      port,
      username,
      password,
      hostKey,
      home,
      privateKey: readFileSync(userKeyPath, 'utf8'),
      log: () => lines.slice(-40).join('\n'),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function chpasswd(username: string, password: string): Promise<void> {
  const child = spawn('chpasswd', [], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  child.stdin!.end(`${username}:${password}\n`);
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`chpasswd failed (${code}): ${stderr.trim()}`);
}

/** Deployed agents run as the test user; end them by pid before the user goes. */
async function killProcessesOf(username: string): Promise<void> {
  const { stdout } = await run('ps', ['-u', username, '-o', 'pid=']).catch(() => ({ stdout: '' }));
  for (const pid of stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once sshd sends its "SSH-2.0-" banner; fails at once if sshd exits (bad config). */
async function waitForBanner(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with code ${child.exitCode}:\n${log()}`);
    const banner = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(500);
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString());
      });
      socket.once('error', () => resolve(''));
      socket.once('timeout', () => {
        socket.destroy();
        resolve('');
      });
    });
    if (banner.startsWith('SSH-2.0-')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not answer on 127.0.0.1:${port} within 10 s:\n${log()}`);
}
