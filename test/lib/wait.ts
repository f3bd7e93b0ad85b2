// One way for tests to wait on asynchronous state: poll a condition until it holds, never a fixed sleep.
// The bound only turns a hang into a clear failure; it is not a timing assertion (tap's own timeout is longer).

/** Polls `fn` until it returns a truthy value and returns that value; throws naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 25,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
