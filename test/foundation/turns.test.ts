// Fair turns on the one thread (server/src/core/turns.ts): waiting work resumes one waiter per loop iteration, what a
// caller waits on goes before the background, and connecting callers are accepted before more turns run.
import t from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { inBackground, nextTurn, noteConnection, turnsWaiting, urgently } from '../../server/src/core/turns.js';

t.test('urgent waiters resume before background ones queued earlier; each queue in order', async (t) => {
  const order: string[] = [];
  const all = [
    ...['b1', 'b2'].map((n) => inBackground(() => nextTurn().then(() => order.push(n)))),
    ...['u1', 'u2'].map((n) => urgently(() => nextTurn().then(() => order.push(n)))),
  ];
  t.same(turnsWaiting(), { urgent: 2, background: 2 });
  await Promise.all(all);
  t.same(order, ['u1', 'u2', 'b1', 'b2']);
  t.same(turnsWaiting(), { urgent: 0, background: 0 });
});

t.test('urgency follows the async context: work started by urgent work is urgent unless put in the background', async (t) => {
  const order: string[] = [];
  const background = inBackground(async () => {
    await nextTurn();
    order.push('job step');
  });
  const request = urgently(async () => {
    await Promise.resolve();
    await nextTurn();
    order.push('admission');
    // A job started by a request: its steps are background, like the job above queued before the admission.
    await inBackground(async () => {
      await nextTurn();
      order.push('started job');
    });
  });
  await Promise.all([background, request]);
  t.same(order, ['admission', 'job step', 'started job']);
});

t.test('a turn is a loop iteration: a timer due meanwhile fires between turns', async (t) => {
  const order: string[] = [];
  let timer: Promise<void> | undefined;
  await Promise.all([
    inBackground(() =>
      nextTurn().then(() => {
        order.push('turn 1');
        timer = new Promise<void>((r) => setTimeout(() => (order.push('timer'), r()), 1));
        const end = Date.now() + 5;
        while (Date.now() < end);
      }),
    ),
    inBackground(() => nextTurn().then(() => order.push('turn 2'))),
  ]);
  await timer;
  // In one microtask drain turn 2 would run before the timer, which turn 1's 5 ms made due.
  t.same(order, ['turn 1', 'timer', 'turn 2']);
});

t.test('connecting callers are accepted before more turns run (libuv accepts one connection per iteration)', async (t) => {
  const server = createServer();
  let turnsRun = 0;
  const acceptedAfter: number[] = [];
  server.on('connection', (s: Socket) => {
    noteConnection();
    acceptedAfter.push(turnsRun);
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const CONNECTIONS = 40;
  // The kernel completes the handshakes on loopback by itself: all 40 wait in the accept queue.
  const clients = Array.from({ length: CONNECTIONS }, () => new Promise<void>((r) => createConnection(port).on('close', r)));
  // A busy background: 200 turns of 1 ms each.
  const work = Array.from({ length: 200 }, () =>
    inBackground(() =>
      nextTurn().then(() => {
        turnsRun++;
        const end = Date.now() + 1;
        while (Date.now() < end);
      }),
    ),
  );
  await Promise.all([...clients, ...work]);
  server.close();
  t.equal(acceptedAfter.length, CONNECTIONS);
  // Without noteConnection each accept would wait for a turn: the last one after ~40 turns.
  t.ok(acceptedAfter[CONNECTIONS - 1] < 10, `the last connection was accepted after ${acceptedAfter[CONNECTIONS - 1]} turns`);
});

function createConnection(port: number): Socket {
  return connect(port, '127.0.0.1').on('error', () => undefined);
}
