// The server's one AsyncLocalStorage (core/async-scope.ts) holds several slots: each must behave as a storage of its
// own — set and unset without touching the others, carried across awaits, timers and promises started inside, and
// never seen by work that runs beside it.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { scopeSlot } from '../../server/src/core/async-scope.js';

const a = scopeSlot<string>('a');
const b = scopeSlot<number>('b');

t.test('slots are independent: run and exit change one slot only', async (t) => {
  t.equal(a.get(), undefined);
  await a.run('x', async () => {
    t.equal(a.get(), 'x');
    t.equal(b.get(), undefined);
    await b.run(1, async () => {
      t.same([a.get(), b.get()], ['x', 1], 'the outer slot stays set');
      await a.exit(async () => {
        await sleep(1);
        t.same([a.get(), b.get()], [undefined, 1], 'exit unsets its own slot only');
      });
      await a.run('y', async () => t.same([a.get(), b.get()], ['y', 1], 'a nested run replaces its own slot only'));
      t.same([a.get(), b.get()], ['x', 1], 'restored after the nested calls');
    });
    t.equal(b.get(), undefined, 'restored after run');
  });
  t.equal(a.get(), undefined);
});

t.test('values follow the async work started inside, and concurrent work sees its own', async (t) => {
  const seen: Array<[string | undefined, number | undefined]> = [];
  const job = (name: string, n: number) =>
    a.run(name, () =>
      b.run(n, async () => {
        await sleep(5 - n);
        await new Promise<void>((resolve) => setImmediate(resolve));
        const later = new Promise<[string | undefined, number | undefined]>((resolve) => setTimeout(() => resolve([a.get(), b.get()]), 1));
        seen.push(await later);
      }),
    );
  await Promise.all([job('one', 1), job('two', 2), job('three', 3)]);
  t.same(
    seen.sort((x, y) => x[1]! - y[1]!),
    [
      ['one', 1],
      ['two', 2],
      ['three', 3],
    ],
  );
  t.same([a.get(), b.get()], [undefined, undefined], 'nothing leaks out');
});
