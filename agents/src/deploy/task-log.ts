// Collects every task's log lines and POSTs them, in order, to the logging URL. Posting runs beside the deploy
// (a slow or dead log server costs the deploy nothing) and a failed POST is counted, never thrown.
import type { TaskLog } from './types.js';

const POST_TIMEOUT_MS = 2000;

export class TaskLogger {
  readonly entries: TaskLog[] = [];
  postFailures = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly logUrl?: string) {}

  record(entry: TaskLog): void {
    this.entries.push(entry);
    if (this.logUrl) {
      const url = this.logUrl;
      this.queue = this.queue
        .then(() => post(url, entry))
        .catch(() => {
          this.postFailures++;
        });
    }
  }

  /** Waits for the posts still in flight, at most `maxWaitMs`. */
  async flush(maxWaitMs = POST_TIMEOUT_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.queue, new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs)))]);
    clearTimeout(timer);
  }
}

async function post(url: string, entry: TaskLog): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(entry),
    signal: AbortSignal.timeout(POST_TIMEOUT_MS),
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`log POST answered ${res.status}`);
}
