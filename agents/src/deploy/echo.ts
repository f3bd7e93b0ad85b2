// "Is the agent up?" from the deployer's side: POST to the kind's echo path (it needs no secret), over HTTP.

const PROBE_TIMEOUT_MS = 1000;
const POLL_INTERVAL_MS = 100;

export async function echoAnswers(url: string, signal: AbortSignal, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

export type EchoWait = 'answered' | 'exited' | 'timeout';

/**
 * Polls the echo path until it answers or `timeoutMs` passes. `stillRunning` is asked about once a second, so an
 * agent that crashed at start fails the wait at once instead of after the whole timeout.
 */
export async function waitForEcho(url: string, opts: { timeoutMs: number; signal: AbortSignal; stillRunning?: () => Promise<boolean> }): Promise<EchoWait> {
  const deadline = Date.now() + opts.timeoutMs;
  let nextLivenessCheck = Date.now() + 1000;
  while (Date.now() < deadline) {
    if (await echoAnswers(url, opts.signal)) return 'answered';
    opts.signal.throwIfAborted();
    if (opts.stillRunning && Date.now() >= nextLivenessCheck) {
      if (!(await opts.stillRunning())) return 'exited';
      nextLivenessCheck = Date.now() + 1000;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  return 'timeout';
}
