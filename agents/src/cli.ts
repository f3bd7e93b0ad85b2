// zstack-agent <kind> [--port N] [--host H] [--secret S] [--backend B] [--storage-root DIR] [--vnc-host H] [--quiet]
// Prints one JSON line {"listening": url, "kind": ...} on stdout when ready; logs JSON lines on stderr.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ConsoleProxyOptions } from './console-proxy/handlers.js';
import { AGENT_KINDS, BACKENDS, DEFAULT_PORTS, startAgent, type AgentBackend, type AgentKind } from './agent.js';

const USAGE = `usage: zstack-agent <${AGENT_KINDS.join('|')}> [--port N] [--host 127.0.0.1] [--secret S]
                    [--backend simulator|libvirt|real] [--storage-root DIR] [--vnc-host 127.0.0.1] [--quiet]
                    console-proxy: [--proxy-port 4900] [--proxy-host H] [--proxy-public-hostname H] [--tls-cert F --tls-key F]
The secret can also come from ZSTACK_AGENT_SECRET. Default ports: ${Object.entries(DEFAULT_PORTS)
  .map(([k, p]) => `${k} ${p}`)
  .join(', ')}.`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      secret: { type: 'string' },
      backend: { type: 'string' },
      'storage-root': { type: 'string' },
      'vnc-host': { type: 'string' },
      'proxy-port': { type: 'string' },
      'proxy-host': { type: 'string' },
      'proxy-public-hostname': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const kind = positionals[0] as AgentKind;
  if (positionals.length !== 1 || !AGENT_KINDS.includes(kind)) fail(`expected one agent kind\n${USAGE}`);
  const secret = values.secret ?? process.env.ZSTACK_AGENT_SECRET;
  if (!secret) fail('a secret is required: --secret S or ZSTACK_AGENT_SECRET');
  const port = values.port === undefined ? DEFAULT_PORTS[kind] : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${values.port}`);
  const backend = values.backend as AgentBackend | undefined;
  if (backend !== undefined && !BACKENDS[kind].includes(backend)) fail(`${kind} supports --backend ${BACKENDS[kind].join('|')}`);

  const log = values.quiet
    ? undefined
    : (entry: Record<string, unknown>) => {
        process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
      };
  const consoleProxy: ConsoleProxyOptions = {};
  if (values['proxy-port'] !== undefined) consoleProxy.port = Number(values['proxy-port']);
  if (values['proxy-host'] !== undefined) consoleProxy.host = values['proxy-host'];
  if (values['proxy-public-hostname'] !== undefined) consoleProxy.publicHostname = values['proxy-public-hostname'];
  if (values['tls-cert'] && values['tls-key']) {
    consoleProxy.tls = { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) };
  }
  const agent = await startAgent({
    kind,
    port,
    host: values.host,
    secret,
    backend,
    storageRoot: values['storage-root'],
    vncHost: values['vnc-host'],
    log,
    consoleProxy,
  });
  process.stdout.write(`${JSON.stringify({ listening: agent.url, kind, backend: agent.backend })}\n`);

  const stop = () => {
    agent.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function fail(message: string): never {
  process.stderr.write(`zstack-agent: ${message}\n`);
  process.exit(2);
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`zstack-agent: ${err.message}\n`);
  process.exit(1);
});
