// Load shedding at admission. A call's deadline counts from its arrival (router.ts): when more calls are being
// admitted than the server gets through before this one's deadline, admitting it only produces a late SYS.1001 and
// slows the others. By Little's law the wait of a call arriving now is about (calls being admitted) ÷ (calls admitted
// per ms, over the last second — or since the queue was last empty, so a storm's first answers are not averaged with
// the quiet before it); past the call's remaining budget it is answered at once — SYS.1001 with HTTP 503 and
// Retry-After — with nothing done.
import { ApiError, errorCode } from './errors.js';

const BUCKET_MS = 100;
const BUCKETS = 10;
/** One slot more than the window spans: the window's first slot is never the one being reused for now. */
const RING = BUCKETS + 1;

export class AdmissionQueue {
  /** Calls between their arrival and their answer (the 202 of a job, a query's or a synchronous call's reply). */
  private admitting = 0;
  /** Answers per BUCKET_MS slot over the last BUCKETS slots (a ring), and the slot each entry counts for. */
  private counts = new Array<number>(RING).fill(0);
  private slots = new Array<number>(RING).fill(-1);
  /** When the queue last went from empty to busy. */
  private busySince = 0;

  constructor(
    /** Below this many calls in admission nothing is shed (a handful of calls always goes through). */
    private minQueue = 16,
    private now: () => number = Date.now,
  ) {}

  /** A call arrived; `left` is called once it is answered (or its caller went away). */
  enter(): () => void {
    if (this.admitting++ === 0) this.busySince = this.now();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.admitting--;
      const slot = Math.floor(this.now() / BUCKET_MS);
      const i = slot % RING;
      if (this.slots[i] !== slot) {
        this.slots[i] = slot;
        this.counts[i] = 0;
      }
      this.counts[i]++;
    };
  }

  /** Calls in admission now. */
  get size(): number {
    return this.admitting;
  }

  /** The expected wait of a call arriving now (ms), or undefined while there is no recent rate to go by. */
  expectedWaitMs(): number | undefined {
    const now = this.now();
    const from = Math.max(now - BUCKETS * BUCKET_MS, this.admitting ? this.busySince : now);
    const first = Math.floor(from / BUCKET_MS);
    let answered = 0;
    for (let i = 0; i < RING; i++) if (this.slots[i] >= first) answered += this.counts[i];
    if (answered < 8) return undefined;
    return (this.admitting * Math.max(BUCKET_MS, now - from)) / answered;
  }

  /** The error that refuses a call whose deadline is `remainingMs` away, or undefined to admit it. */
  refusal(remainingMs: number): ApiError | undefined {
    if (this.admitting < this.minQueue) return undefined;
    const wait = this.expectedWaitMs();
    if (wait === undefined || wait <= remainingMs) return undefined;
    const e = new ApiError(
      errorCode(
        'SYS.1001',
        `the server is busy: ${this.admitting} calls are being admitted ahead of this one (about ${Math.round(wait)} ms), ` +
          `past this call's deadline (${Math.max(0, Math.round(remainingMs))} ms left); nothing was done, retry later`,
      ),
      503,
    );
    e.error.opaque = { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) };
    return e;
  }
}
