// The zstack-agent command: starts through tsx, prints one JSON line when ready, stops on SIGTERM.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const BIN = fileURLToPath(new URL('../bin/zstack-agent.mjs', import.meta.url));

t.test('zstack-agent simulator prints where it listens and serves', async (t) => {
  const child = spawn(process.execPath, [BIN, 'simulator', '--port', '0', '--secret', 'cli-secret'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const ready = JSON.parse(line);
  t.equal(ready.kind, 'simulator');
  t.match(ready.listening, /^http:\/\/127\.0\.0\.1:\d+$/);

  const res = await fetch(`${ready.listening}/host/connect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer cli-secret' },
    body: JSON.stringify({ hostUuid: 'h1' }),
  });
  t.equal((await res.json()).success, true);

  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.equal(code, 0, 'clean exit on SIGTERM');
});

t.test('zstack-agent refuses to start without a secret', async (t) => {
  const env = { ...process.env };
  delete env.ZSTACK_AGENT_SECRET;
  const child = spawn(process.execPath, [BIN, 'kvm', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const [code] = await once(child, 'exit');
  t.equal(code, 2);
  t.match(stderr, /a secret is required/);
});
