// Streams a URL to a file, computing the md5 on the way and reporting progress; or pretends to (sim://).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { sleep } from '../lib/abort.js';
import { AgentError } from '../lib/errors.js';

export interface DownloadResult {
  md5Sum: string;
  size: number;
}

export type ProgressListener = (downloadedBytes: number, totalBytes: number | undefined) => void;

export const SUPPORTED_SCHEMES = ['http:', 'https:', 'file:', 'sim:'];

export function parseImageUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AgentError(`invalid image url: ${url}`);
  }
  if (!SUPPORTED_SCHEMES.includes(parsed.protocol)) {
    throw new AgentError(`unsupported url scheme ${parsed.protocol} (supported: http, https, file, sim)`);
  }
  return parsed;
}

/**
 * Downloads an http(s):// or file:// URL to `dest`. Writes to a temporary name first so that an aborted or
 * failed download never leaves a partial file at `dest`.
 */
export async function downloadToFile(url: URL, dest: string, signal: AbortSignal, onProgress: ProgressListener): Promise<DownloadResult> {
  const { source, totalBytes } = await open(url, signal);
  const tmp = `${dest}.download-${randomBytes(4).toString('hex')}`;
  const md5 = createHash('md5');
  let size = 0;
  onProgress(0, totalBytes);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      md5.update(chunk);
      size += chunk.length;
      onProgress(size, totalBytes);
      done(null, chunk);
    },
  });
  await mkdir(dirname(dest), { recursive: true });
  try {
    await pipeline(source, meter, createWriteStream(tmp), { signal });
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    if (signal.aborted) throw signal.reason;
    throw err instanceof AgentError ? err : new AgentError(`download of ${url.href} failed: ${(err as Error).message}`);
  }
  return { md5Sum: md5.digest('hex'), size };
}

async function open(url: URL, signal: AbortSignal): Promise<{ source: Readable; totalBytes?: number }> {
  if (url.protocol === 'file:') {
    const path = fileURLToPath(url);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new AgentError(`${url.href} is not a readable file`);
    return { source: createReadStream(path), totalBytes: info.size };
  }
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new AgentError(`cannot fetch ${url.href}: ${causeOf(err)}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new AgentError(`cannot fetch ${url.href}: HTTP ${res.status}`);
  }
  const length = Number(res.headers.get('content-length'));
  return {
    source: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>),
    totalBytes: Number.isFinite(length) && length > 0 ? length : undefined,
  };
}

function causeOf(err: unknown): string {
  const e = err as Error & { cause?: Error };
  return e.cause?.message ?? e.message;
}

export interface PretendDefaults {
  size: number;
  durationMs: number;
}

const PRETEND_STEPS = 10;

/**
 * A download that only takes time: `sim://<anything>?size=<bytes>&durationMs=<ms>&fail=true`. Progress moves in
 * ten steps; the md5 is that of the URL (deterministic, nothing is on disk).
 */
export async function pretendDownload(url: URL, defaults: PretendDefaults, signal: AbortSignal, onProgress: ProgressListener): Promise<DownloadResult> {
  const size = numberParam(url, 'size') ?? defaults.size;
  const durationMs = numberParam(url, 'durationMs') ?? defaults.durationMs;
  const fail = url.searchParams.get('fail') === 'true';
  onProgress(0, size);
  for (let step = 1; step <= PRETEND_STEPS; step++) {
    await sleep(durationMs / PRETEND_STEPS, signal);
    if (fail && step === PRETEND_STEPS / 2) throw new AgentError(`simulated download failure of ${url.href}`);
    onProgress(Math.floor((size * step) / PRETEND_STEPS), size);
  }
  return { md5Sum: createHash('md5').update(url.href).digest('hex'), size };
}

function numberParam(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new AgentError(`sim:// url parameter ${name} must be a non-negative number`);
  return n;
}
