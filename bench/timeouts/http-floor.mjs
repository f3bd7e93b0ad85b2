// The HTTP floor under bench/timeouts (bench/README.md, timeouts): 100 concurrent fetch POSTs from this process to
// a bare node:http server in a second process, which records when its request event fires and answers at once.
// Prints, per round, how long after the send the server saw the request and how long the reply took (ms).
//   node bench/timeouts/http-floor.mjs
import { spawn } from 'node:child_process';
const child = spawn(
  process.execPath,
  [
    '-e',
    `
  const http = require('node:http');
  const s = http.createServer((req, res) => { const at = Date.now(); let b=''; req.on('data', d => b += d); req.on('end', () => { res.setHeader('content-type','application/json'); res.end(JSON.stringify({ at })); }); });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const port = await new Promise((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
for (let round = 0; round < 3; round++) {
  const arrive = [],
    reply = [];
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      const sent = Date.now();
      const res = await fetch(`http://127.0.0.1:${port}/x`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ a: 1 }),
      });
      const { at } = await res.json();
      arrive.push(at - sent);
      reply.push(Date.now() - sent);
    }),
  );
  console.log(JSON.stringify({ round, arriveP50: pct(arrive, 50), arriveP99: pct(arrive, 99), replyP50: pct(reply, 50), replyP99: pct(reply, 99) }));
}
child.kill();
