// The one assertion that a call fails as the API says it should: a ZStackError (an ApiError thrown by a server
// service directly counts as its SDK form) with the code, the details and, when given, the HTTP status.
import { ZStackError } from '../../sdk/src/index.js';
import { ApiError } from '../../server/src/core/errors.js';

// The assertions used (tap's own signatures are generic beyond use here).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Assert = (...args: any[]) => unknown;
export interface FailsT {
  ok: Assert;
  equal: Assert;
  match: Assert;
}

/** `p` fails with `code` and details matching `details`; the error, or undefined when it did not fail so. */
export async function fails(t: FailsT, p: Promise<unknown>, code: string, details: RegExp, what?: string): Promise<ZStackError | undefined>;
/** The same, with the HTTP status too. */
export async function fails(t: FailsT, p: Promise<unknown>, status: number, code: string, details: RegExp, what?: string): Promise<ZStackError | undefined>;
export async function fails(
  t: FailsT,
  p: Promise<unknown>,
  ...args: [string, RegExp, string?] | [number, string, RegExp, string?]
): Promise<ZStackError | undefined> {
  const [status, code, details, what] =
    typeof args[0] === 'number' ? (args as [number, string, RegExp, string?]) : [undefined, ...(args as [string, RegExp, string?])];
  const label = what ?? String(details);
  const x = await p.then(
    () => undefined,
    (x) => x,
  );
  const e = x instanceof ApiError ? new ZStackError(JSON.parse(JSON.stringify(x.error)), x.httpStatus) : x;
  t.ok(e instanceof ZStackError, `${label} fails`);
  if (!(e instanceof ZStackError)) return undefined;
  if (status !== undefined) t.equal(e.httpStatus, status, `${label}: HTTP ${status}`);
  t.equal(e.code, code, `${label}: ${code}`);
  t.match(e.details ?? '', details, `${label}: details`);
  return e;
}
