// The shared batcher (locks, job writes): a lone item goes at once, items arriving while a batch runs go together
// in the next, a failing batch is retried item by item (only its bad item fails), and batches never run in a caller's async context.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Batcher } from '../../server/src/core/batcher.js';
import { backgroundContext, currentContext, runInContext } from '../../server/src/core/context.js';

t.test('a lone item goes at once; items queued meanwhile share the next batch', async (t) => {
  const batches: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const b = new Batcher<number, number>(async (items) => {
    batches.push(items);
    if (batches.length === 1) await gate;
    return items.map((i) => i * 10);
  });
  const first = b.add(1);
  await sleep(5);
  t.same(batches, [[1]], 'the first item did not wait for company');
  const rest = [2, 3, 4].map((i) => b.add(i));
  await sleep(5);
  t.equal(batches.length, 1, 'nothing else runs while a batch is in flight');
  release();
  t.same(await Promise.all([first, ...rest]), [10, 20, 30, 40], 'each caller gets its own output');
  t.same(batches, [[1], [2, 3, 4]]);
  t.equal(b.batches, 2);
});

t.test('maxItems splits a long queue; a failing batch is retried item by item, so only the bad item fails', async (t) => {
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const b = new Batcher<number, number>(async (items) => {
    calls++;
    if (calls === 1) await gate;
    if (items.includes(3)) throw new Error('batch with 3 failed');
    return items;
  }, 2);
  const all = [0, 1, 2, 3, 4].map((i) =>
    b.add(i).then(
      (v) => `ok ${v}`,
      (e: Error) => e.message,
    ),
  );
  release();
  t.same(await Promise.all(all), ['ok 0', 'ok 1', 'ok 2', 'batch with 3 failed', 'ok 4'], 'batches [0], [1, 2], [3, 4] → [3], [4]');
  t.equal(b.batches, 5);
});

t.test("a batch runs in the batcher's async context, not in the first caller's", async (t) => {
  const seen: Array<string | undefined> = [];
  const b = new Batcher<number, number>(async (items) => {
    seen.push(currentContext()?.apiName);
    return items;
  });
  await runInContext(backgroundContext('SomeCaller', 1000, { timer: false }), () => b.add(1));
  t.same(seen, [undefined]);
});

t.test('idle() resolves once everything queued so far has run', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const done: number[] = [];
  const b = new Batcher<number, void>(async (items) => {
    if (items[0] === 1) await gate;
    done.push(...items);
    return items.map(() => undefined);
  });
  await b.idle();
  t.pass('at once when nothing is queued');
  const all = [1, 2, 3].map((i) => b.add(i));
  let idle = false;
  const waiting = b.idle().then(() => (idle = true));
  await new Promise((r) => setImmediate(r));
  t.notOk(idle, 'not while a batch is in flight');
  release();
  await waiting;
  t.same(done, [1, 2, 3], 'the batch in flight and the one queued behind it both ran first');
  await Promise.all(all);
});
