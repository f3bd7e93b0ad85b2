// zstack-cli: upstream's command-line client, on the SDK. One-shot (`zstack-cli QueryZone name=zone1`) or
// interactive (`>>>` prompt, history, tab completion of API and parameter names from the spec). The session of
// `LogInByAccount` is kept in ~/.zstack/cli/session. Replies print as upstream prints them (sorted keys, 2-space
// JSON) or as a table (`-o table`); a failure prints its ErrorCode and exits non-zero.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { ZStackClient, hashPassword } from '../client.js';
import { ZStackError } from '../errors.js';
import { OPERATIONS, PARAMS, type OperationId } from '../generated/operations.js';
import type { OperationInfo } from '../types.js';
import { API_NAMES, QUERY_RESERVED, UsageError, complete, parameterNames, parseCommand, resolveApiName, tokenize } from './args.js';
import { toJson, toTable } from './format.js';

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface CliIO {
  /** Arguments after the program name. */
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: Output;
  stderr: Output;
  stdin?: Readable & { isTTY?: boolean };
  /** Shows a long text a screen at a time (on a terminal; `help`'s list of every API). */
  pager?: (text: string) => void;
}

interface Settings {
  endpoint: string;
  output: 'json' | 'table';
  curl: boolean;
  dir: string;
}

const USAGE = `usage: zstack-cli [-H host] [-p port] [-o json|table] [-c] [<Api> [key=value ...]]

  -H, --host HOST     management server host (env ZSTACK_HOST, default localhost)
  -p, --port PORT     management server port (env ZSTACK_PORT, default 8080)
  -o, --output FMT    json (default, as upstream) or table
  -c, --curl          also print the request as a curl command (on stderr, session redacted)
  -h, --help          this help; \`zstack-cli help <Api>\` describes an API

Without an API, an interactive shell starts (>>> prompt, history, tab completion).
Parameters are key=value; lists are comma separated (a,b) or JSON; maps are JSON, e.g.
  zstack-cli LogInByAccount accountName=admin password=password
  zstack-cli QueryL3Network fields=l2NetworkUuid, uuid=<uuid>
  zstack-cli DetachNetworkServiceFromL3Network l3NetworkUuid=<uuid> networkServices='{"<provider>":["DHCP","DNS"]}'
Query APIs take conditions <field><op><value> (ops = != > < >= <= ?= !?= ~= !~=, value null for is/not null) and
the reserved keys ${QUERY_RESERVED.filter((k) => k !== 'q').join(', ')}.
`;

const usageErrorCode = (details: string) => ({ code: 'SYS.1007', description: 'One or more API argument is invalid', details });

function sessionFile(dir: string): string {
  return join(dir, 'session');
}

export function readSession(dir: string): string | undefined {
  try {
    return readFileSync(sessionFile(dir), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function writeSession(dir: string, uuid: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(sessionFile(dir), uuid + '\n', { mode: 0o600 });
  chmodSync(sessionFile(dir), 0o600);
}

function parseOptions(io: CliIO): { settings: Settings; rest: string[]; help: boolean } {
  let host = io.env.ZSTACK_HOST || 'localhost';
  let port = io.env.ZSTACK_PORT || '8080';
  let output: Settings['output'] = 'json';
  let curl = false;
  let help = false;
  const rest: string[] = [];
  const args = [...io.argv];
  const value = (name: string) => {
    const v = args.shift();
    if (v === undefined) throw new UsageError(`${name} needs a value`);
    return v;
  };
  while (args.length) {
    const a = args.shift()!;
    if (a === '-H' || a === '--host') host = value(a);
    else if (a === '-p' || a === '--port') port = value(a);
    else if (a === '-o' || a === '--output') {
      const v = value(a);
      if (v !== 'json' && v !== 'table') throw new UsageError(`-o takes json or table, got ${v}`);
      output = v;
    } else if (a === '-c' || a === '--curl') curl = true;
    else if (a === '-h' || a === '--help') help = true;
    else if (a.startsWith('-') && !a.includes('=') && rest.length === 0) throw new UsageError(`unknown option ${a}`);
    else rest.push(a);
  }
  if (!/^\d+$/.test(port)) throw new UsageError(`port must be a number, got ${port}`);
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const endpoint = /^https?:\/\//.test(host) ? host : `http://${hostPart}:${port}`;
  const dir = join(io.env.HOME || homedir(), '.zstack', 'cli');
  return { settings: { endpoint, output, curl, dir }, rest, help };
}

/** `help` or `help <Api>`: the APIs, or one API's parameters with their types. */
function helpText(apiName?: string): string {
  if (!apiName) {
    return (
      `${API_NAMES.length} APIs (help <Api> for one):\n` +
      API_NAMES.map((n) => `  ${n.padEnd(44)} ${(OPERATIONS[n] as OperationInfo).summary ?? ''}`).join('\n')
    );
  }
  const name = resolveApiName(apiName);
  const op = OPERATIONS[name] as OperationInfo;
  const lines = [`${name}: ${op.summary ?? ''}`, `  ${op.method} ${op.path}  (${op.kind}, default timeout ${op.timeout})`];
  if (op.kind === 'query') {
    lines.push(
      `  conditions on: ${parameterNames(name)
        .filter((n) => !(QUERY_RESERVED as readonly string[]).includes(n))
        .join(' ')}`,
    );
    lines.push(`  reserved: ${QUERY_RESERVED.filter((k) => k !== 'q').join(' ')}`);
  } else {
    for (const p of PARAMS[name]) {
      const type = p.type === 'array' ? `${p.items ?? 'string'}[]` : p.type;
      const values = p.enum ? ` one of ${p.enum.join('|')}` : '';
      lines.push(`  ${p.name}${p.required ? '' : '?'} (${type}${values})${p.description ? `  ${p.description}` : ''}`);
    }
  }
  return lines.join('\n');
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

type Progress = { progress?: string; step?: string; stepsDone?: number; stepsTotal?: number; percent?: number };

const describeProgress = (p: Progress) => {
  const steps = p.step && p.stepsTotal ? `${p.step} (${(p.stepsDone ?? 0) + 1}/${p.stepsTotal})` : '';
  const percent = p.progress ?? (p.percent !== undefined ? `${p.percent}%` : '');
  return [percent, steps].filter(Boolean).join(' ');
};

/**
 * A spinner line on stderr while an asynchronous job runs, on a terminal; otherwise a plain line each time its
 * reported progress changes once it has run a second (a quick job prints nothing).
 */
function spinner(err: Output, apiName: string) {
  if (!err.isTTY) {
    let last = '';
    return {
      onProgress(p: Progress & { elapsedMs: number }) {
        if (p.elapsedMs < 1000) return;
        const now = describeProgress(p);
        if (now && now !== last) err.write(`${apiName}: ${now}\n`);
        last = now || last;
      },
      stop() {},
    };
  }
  const started = Date.now();
  let progress = '';
  let frame = 0;
  const draw = () =>
    err.write(`\r\x1b[2K${SPINNER[frame++ % SPINNER.length]} ${apiName} ${((Date.now() - started) / 1000).toFixed(1)}s${progress ? ` ${progress}` : ''}`);
  const timer = setInterval(draw, 120);
  return {
    onProgress(p: Progress) {
      progress = describeProgress(p);
    },
    stop() {
      clearInterval(timer);
      err.write('\r\x1b[2K');
    },
  };
}

/** Runs one command line (already split into words); returns the exit status. */
export async function runCommand(tokens: string[], settings: Settings, io: CliIO): Promise<number> {
  // The REST reply's `schema` map (inventory classes for upstream's typed SDKs) is not part of 1.1's CLI output.
  let columns: string[] | undefined; // a query's `fields=`, in the order given: the table's columns
  const print = (value: unknown) => io.stdout.write((settings.output === 'table' ? toTable(value, columns) : toJson(withoutSchema(value))) + '\n');
  try {
    if (tokens[0] === 'help') {
      const text = helpText(tokens[1]) + '\n';
      if (io.pager && io.stdout.isTTY) io.pager(text);
      else io.stdout.write(text);
      return 0;
    }
    const session = readSession(settings.dir);
    // LogOut without a sessionUuid ends the CLI's own session.
    if (resolveApiName(tokens[0]) === 'LogOut' && !tokens.some((w) => w.startsWith('sessionUuid='))) {
      if (!session) throw new UsageError('LogOut: not logged in (no session in ~/.zstack/cli/session)');
      tokens = [...tokens, `sessionUuid=${session}`];
    }
    const cmd = parseCommand(tokens);
    const { apiName } = cmd;
    const params = { ...cmd.params };
    const f = params.fields;
    columns = Array.isArray(f) ? f.map(String) : typeof f === 'string' ? f.split(',').filter(Boolean) : undefined;
    // As upstream's CLI: the clear password is hashed (SHA-512) before it leaves.
    if (apiName === 'LogInByAccount' && typeof params.password === 'string') params.password = hashPassword(params.password);
    // A CLI fails fast when the server is down: two quick retries of what is safe to retry.
    const client = new ZStackClient({
      endpoint: settings.endpoint,
      sessionUuid: session,
      env: false,
      headers: { 'User-Agent': 'zstack-cli' },
      retry: { retries: 2, baseDelayMs: 100, maxDelayMs: 1000 },
    });
    if (settings.curl) io.stderr.write(client.toCurl(apiName as OperationId, params as never, { timeoutMs: cmd.timeoutMs }) + '\n');
    const op = OPERATIONS[apiName] as OperationInfo;
    const spin = op.kind === 'async' ? spinner(io.stderr, apiName) : { onProgress: undefined, stop() {} };
    let reply: unknown;
    try {
      reply = await client.call(apiName as OperationId, params as never, { timeoutMs: cmd.timeoutMs, onProgress: spin.onProgress });
    } finally {
      spin.stop();
    }
    if (apiName === 'LogInByAccount') writeSession(settings.dir, (reply as { inventory: { uuid: string } }).inventory.uuid);
    if (apiName === 'LogOut' && params.sessionUuid === session) rmSync(sessionFile(settings.dir), { force: true });
    print(reply);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      print(usageErrorCode(e.message));
      return 2;
    }
    if (e instanceof ZStackError) {
      print(e.errorCode);
      return 1;
    }
    print({ code: 'SYS.1000', description: 'An internal error happened in the system', details: e instanceof Error ? e.message : String(e) });
    return 1;
  }
}

function historyFile(dir: string): string {
  return join(dir, 'history');
}

/** Passwords never reach the history file (as upstream scrubs them on exit). */
export const scrubPasswords = (line: string): string => line.replace(/(password=)(?:'[^']*'|"[^"]*"|\S+)/gi, '$1******');

async function interactive(settings: Settings, io: CliIO): Promise<number> {
  const input = io.stdin ?? process.stdin;
  const terminal = Boolean((input as { isTTY?: boolean }).isTTY && io.stdout.isTTY);
  let history: string[] = [];
  try {
    history = readFileSync(historyFile(settings.dir), 'utf8').split('\n').filter(Boolean).reverse();
  } catch {
    // no history yet
  }
  const rl = createInterface({
    input,
    output: terminal ? (io.stdout as NodeJS.WritableStream) : undefined,
    terminal,
    prompt: '>>> ',
    completer: (line: string) => complete(line),
    history,
    historySize: 1000,
    removeHistoryDuplicates: true,
  } as Parameters<typeof createInterface>[0]);
  const saveHistory = (h: string[]) => {
    try {
      mkdirSync(settings.dir, { recursive: true, mode: 0o700 });
      writeFileSync(historyFile(settings.dir), [...h].reverse().map(scrubPasswords).join('\n') + '\n', { mode: 0o600 });
    } catch {
      // history is a convenience
    }
  };
  rl.on('history', saveHistory);
  let status = 0;
  if (terminal) rl.prompt();
  for await (const line of rl) {
    let words: string[];
    try {
      words = tokenize(line.trim());
    } catch (e) {
      io.stdout.write(toJson(usageErrorCode((e as Error).message)) + '\n');
      if (terminal) rl.prompt();
      continue;
    }
    if (words[0] === 'exit' || words[0] === 'quit') break;
    if (words.length) status = await runCommand(words, settings, io);
    if (terminal) rl.prompt();
  }
  rl.close();
  return status;
}

/** The CLI; returns the exit status. */
export async function runCli(io: CliIO): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(io);
  } catch (e) {
    io.stderr.write(toJson(usageErrorCode((e as Error).message)) + '\n' + USAGE);
    return 2;
  }
  const { settings, rest, help } = parsed;
  if (help) {
    io.stdout.write(USAGE);
    return 0;
  }
  if (rest.length === 0) return interactive(settings, io);
  return runCommand(rest, settings, io);
}

export async function main(): Promise<number> {
  return runCli({ argv: process.argv.slice(2), env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, pager: terminalPager });
}

/**
 * `$PAGER` (default `less -FRX`: it quits at once when the text fits the screen) on the terminal; the text itself when
 * the pager cannot run. The prompt's raw mode is off while it runs.
 */
function terminalPager(text: string): void {
  const stdin = process.stdin as NodeJS.ReadStream;
  const raw = stdin.isTTY && stdin.isRaw;
  if (raw) stdin.setRawMode(false);
  try {
    const r = spawnSync(process.env.PAGER || 'less -FRX', { shell: true, input: text, stdio: ['pipe', 'inherit', 'inherit'] });
    if (r.error || r.status === 127) process.stdout.write(text);
  } finally {
    if (raw) stdin.setRawMode(true);
  }
}

function withoutSchema(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value) || !('schema' in value)) return value;
  const { schema: _schema, ...rest } = value as Record<string, unknown>;
  return rest;
}
