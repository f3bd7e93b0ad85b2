// What `npm start` checks before it does any work, and how it reports a start that cannot go on: one line saying
// what is wrong and how to fix it, never a stack trace.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A start that cannot go on, with a message that says what to do. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** One line for any start-up failure: our own message, or the cause of a well-known one with its fix. */
export function startupMessage(e: unknown, ctx: { databaseUrl?: string } = {}): string {
  if (e instanceof StartupError) return e.message;
  const x = e as { code?: string; message?: string; errors?: Array<{ message?: string }> };
  const msg = firstLine(x?.message || x?.errors?.[0]?.message || String(e));
  const code = x?.code ?? '';
  if (
    ctx.databaseUrl &&
    (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOENT', '28P01', '28000', '3D000'].includes(code) ||
      /connect|password|database .* does not exist/i.test(msg))
  ) {
    return `cannot reach the database at DATABASE_URL (${redactUrl(ctx.databaseUrl)}): ${msg}. Start PostgreSQL or fix DATABASE_URL (unset it to use the embedded database).`;
  }
  return `${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** The URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** The port is free (bound and released at once): checked before the database and the agents start. */
export async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') {
        reject(
          new StartupError(`port ${port} on ${host} is already in use (another ZStack-TS server?): stop what holds it, or set ZSTACK_PORT to a free port`),
        );
      } else if (e.code === 'EACCES') {
        reject(new StartupError(`no permission to listen on port ${port} on ${host}: set ZSTACK_PORT to a port above 1023`));
      } else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') {
        reject(new StartupError(`cannot listen on ${host}: it is not an address of this machine; set ZSTACK_HOST (e.g. 127.0.0.1)`));
      } else {
        reject(new StartupError(`cannot listen on ${host}:${port}: ${e.message}`));
      }
    });
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/** Start time of a process (Linux: /proc/<pid>/stat field 22), to tell a live owner from a reused pid. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether a process runs. A zombie (exited, not yet reaped: its parent died and pid 1 reaps late) does not. */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !processIsZombie(pid);
}

export function processIsZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return false;
  }
}

export interface DataDirLock {
  file: string;
  release(): void;
}

/**
 * Takes `<dataDir>/server.lock` (created exclusively, holding our pid and its start time). A lock whose owner is
 * alive refuses the start at once, before anything in the directory is touched; a lock left by a dead owner (kill -9,
 * power loss) is taken over.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'server.lock');
  const mine = `${process.pid}\n${processStartTime(process.pid) ?? ''}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      try {
        writeSync(fd, mine);
      } finally {
        closeSync(fd);
      }
      return {
        file,
        release: () => {
          try {
            if (readFileSync(file, 'utf8') === mine) unlinkSync(file);
          } catch {
            // already gone
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StartupError(`cannot use the data directory ${dataDir}: ${(e as Error).message}; set ZSTACK_DATA_DIR to a writable directory`);
      }
    }
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // removed meanwhile: try again
    }
    const [pidText, started] = text.split('\n');
    const pid = Number(pidText);
    const alive = processAlive(pid) && (!started || processStartTime(pid) === undefined || processStartTime(pid) === started);
    if (alive && pid !== process.pid) {
      throw new StartupError(
        `the data directory ${dataDir} is in use by another ZStack-TS server (pid ${pid}): stop it, or set ZSTACK_DATA_DIR to another directory`,
      );
    }
    if (!text && attempt === 0) {
      // Being written by a start that began a moment ago: look again once.
      continue;
    }
    // Stale: moved aside (atomic: of two starts taking it over, one wins the rename), then created anew.
    try {
      renameSync(file, `${file}.stale-${process.pid}`);
      unlinkSync(`${file}.stale-${process.pid}`);
    } catch {
      // another start moved it first
    }
  }
  throw new StartupError(`cannot take the lock ${file}: another start is taking it at the same moment; try again`);
}
