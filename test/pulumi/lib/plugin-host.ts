// Starts the dynamic-provider plugin shipped in @pulumi/pulumi (`pulumi-resource-pulumi-nodejs`) the way the engine
// does (cwd = the project, `PULUMI_NODEJS_PROJECT`, `PULUMI_CONFIG`, the engine address as the one argument, the port
// read from the first stdout line) and calls it over gRPC with the engine's rules: secrets removed from what is sent,
// Configure with the namespaced stack config, `olds` = old outputs in Diff/Update.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureBuilt } from '../../lib/packages.js';
import { DYNAMIC_PLUGIN, emptypb, fromStruct, grpc, provgrpc, provpb, secret, stripSecrets, toStruct, unary, type Props } from './wire.js';

export type DiffChanges = 'none' | 'some' | 'unknown';

export interface PluginOptions {
  /** The Pulumi project directory (the plugin resolves `require`s of serialized providers from there). */
  cwd: string;
  project: string;
  /** Stack config, namespaced keys (`zstack:endpoint`) → string values. */
  config?: Record<string, string>;
  secretKeys?: string[];
  env?: NodeJS.ProcessEnv;
  /** The @pulumi/pulumi whose plugin to start (a user project's own copy); default the workspace's. */
  pulumiDir?: string;
}

/** Plain Node for the plugin, as the engine starts it: no TypeScript loader inherited from the test process. */
export function pluginEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (env.NODE_OPTIONS) {
    env.NODE_OPTIONS = env.NODE_OPTIONS.split(/\s+/)
      .filter((o) => o && !/tsx/.test(o))
      .join(' ');
  }
  return env;
}

/** Plugins still running: killed when the test process exits, however it ends (they run in their own groups). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

export class PluginHost {
  readonly client: InstanceType<typeof provgrpc.ResourceProviderClient>;
  stderr = '';
  /** Lines the plugin printed after the port (the engine turns them into diagnostics). */
  stdout: string[] = [];
  calls: string[] = [];
  /** Milliseconds per call, in call order (for the timing report of the tests). */
  timings: Array<[string, number]> = [];

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly opts: PluginOptions,
  ) {
    this.client = new provgrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  static async start(opts: PluginOptions): Promise<PluginHost> {
    // The plugin runs plain Node: it loads @zstack-ts/pulumi/runtime from the package's build (dist/).
    if (!opts.pulumiDir) await ensureBuilt('pulumi');
    const started = Date.now();
    const child = spawn(opts.pulumiDir ? join(opts.pulumiDir, 'pulumi-resource-pulumi-nodejs') : DYNAMIC_PLUGIN, ['127.0.0.1:1'], {
      cwd: opts.cwd,
      detached: true, // its own process group: the script is `sh` running `node`, both must go
      stdio: ['ignore', 'pipe', 'pipe'],
      env: pluginEnv({
        ...opts.env,
        PULUMI_NODEJS_PROJECT: opts.project,
        PULUMI_PROJECT: opts.project,
        PULUMI_CONFIG: JSON.stringify(opts.config ?? {}),
      }),
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const lines = createInterface({ input: child.stdout! });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      const timer = setTimeout(() => reject(new Error(`plugin did not print its port within 20 s; stderr: ${stderr}`)), 20_000);
      child.once('exit', (code) => reject(new Error(`plugin exited (${code}) before printing its port; stderr: ${stderr}`)));
      lines.once('line', (line) => {
        clearTimeout(timer);
        resolve(Number(line.trim()));
      });
    }).catch((e) => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      throw e;
    });
    const host = new PluginHost(child, port, opts);
    host.timings.push(['start', Date.now() - started]);
    if (process.env.PULUMI_TEST_TIMINGS) console.error(`[plugin] start ${Date.now() - started} ms`);
    child.stderr!.on('data', (d) => (host.stderr += d));
    host.stderr = stderr;
    lines.on('line', (l) => host.stdout.push(l));
    await new Promise<void>((resolve, reject) => host.client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
    return host;
  }

  private async timed<T>(what: string, p: Promise<T>): Promise<T> {
    const t = Date.now();
    try {
      return await p;
    } finally {
      this.timings.push([what, Date.now() - t]);
      if (process.env.PULUMI_TEST_TIMINGS) console.error(`[plugin] ${what} ${Date.now() - t} ms`);
    }
  }

  async getPluginInfo(): Promise<string> {
    const info = await unary(this.client.getPluginInfo.bind(this.client), new emptypb.Empty());
    return info.getVersion();
  }

  /** Handshake: the Node plugin answers UNIMPLEMENTED and the engine falls back to Configure. */
  async handshake(): Promise<number | undefined> {
    try {
      await unary(this.client.handshake.bind(this.client), new provpb.ProviderHandshakeRequest());
      return undefined;
    } catch (e) {
      return (e as { code?: number }).code;
    }
  }

  /** Configure with the whole stack config (namespaced keys, secrets wrapped), as the engine does for `pulumi-nodejs`. */
  async configure() {
    const args: Props = {};
    for (const [k, v] of Object.entries(this.opts.config ?? {})) args[k] = this.opts.secretKeys?.includes(k) ? secret(v) : v;
    const req = new provpb.ConfigureRequest().setArgs(toStruct(args)).setAcceptsecrets(true).setAcceptresources(true);
    for (const [k, v] of Object.entries(this.opts.config ?? {})) req.getVariablesMap().set(k, v);
    const res = await this.timed('Configure', unary(this.client.configure.bind(this.client), req));
    this.calls.push('Configure');
    return { acceptSecrets: res.getAcceptsecrets(), supportsPreview: res.getSupportspreview(), acceptResources: res.getAcceptresources() };
  }

  async check(urn: string, olds: Props, news: Props) {
    const req = new provpb.CheckRequest()
      .setUrn(urn)
      .setOlds(toStruct(stripSecrets(olds) as Props))
      .setNews(toStruct(stripSecrets(news) as Props));
    const res = await this.timed(`Check ${urnName(urn)}`, unary(this.client.check.bind(this.client), req));
    this.calls.push(`Check ${urnName(urn)}`);
    return {
      inputs: fromStruct(res.getInputs()),
      failures: res.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async diff(urn: string, id: string, olds: Props, news: Props, oldInputs: Props = {}) {
    const req = new provpb.DiffRequest()
      .setUrn(urn)
      .setId(id)
      .setOlds(toStruct(stripSecrets(olds) as Props))
      .setNews(toStruct(stripSecrets(news) as Props))
      .setOldInputs(toStruct(stripSecrets(oldInputs) as Props));
    const res = await this.timed(`Diff ${urnName(urn)}`, unary(this.client.diff.bind(this.client), req));
    this.calls.push(`Diff ${urnName(urn)}`);
    const C = provpb.DiffResponse.DiffChanges;
    const changes: DiffChanges = res.getChanges() === C.DIFF_SOME ? 'some' : res.getChanges() === C.DIFF_NONE ? 'none' : 'unknown';
    return { changes, replaces: res.getReplacesList(), deleteBeforeReplace: res.getDeletebeforereplace() };
  }

  async create(urn: string, props: Props, timeoutSec = 0) {
    const req = new provpb.CreateRequest()
      .setUrn(urn)
      .setProperties(toStruct(stripSecrets(props) as Props))
      .setTimeout(timeoutSec);
    this.calls.push(`Create ${urnName(urn)}`);
    const res = await this.timed(`Create ${urnName(urn)}`, unary(this.client.create.bind(this.client), req));
    return { id: res.getId(), properties: fromStruct(res.getProperties()) };
  }

  async read(urn: string, id: string, props: Props, inputs: Props = {}) {
    const req = new provpb.ReadRequest()
      .setUrn(urn)
      .setId(id)
      .setProperties(toStruct(stripSecrets(props) as Props))
      .setInputs(toStruct(stripSecrets(inputs) as Props));
    this.calls.push(`Read ${urnName(urn)}`);
    const res = await this.timed(`Read ${urnName(urn)}`, unary(this.client.read.bind(this.client), req));
    return { id: res.getId(), properties: fromStruct(res.getProperties()), inputs: res.getInputs() ? fromStruct(res.getInputs()) : undefined };
  }

  async update(urn: string, id: string, olds: Props, news: Props, oldInputs: Props = {}) {
    const req = new provpb.UpdateRequest()
      .setUrn(urn)
      .setId(id)
      .setOlds(toStruct(stripSecrets(olds) as Props))
      .setNews(toStruct(stripSecrets(news) as Props))
      .setOldInputs(toStruct(stripSecrets(oldInputs) as Props));
    this.calls.push(`Update ${urnName(urn)}`);
    const res = await this.timed(`Update ${urnName(urn)}`, unary(this.client.update.bind(this.client), req));
    return { properties: fromStruct(res.getProperties()) };
  }

  async delete(urn: string, id: string, props: Props, oldInputs: Props = {}) {
    const req = new provpb.DeleteRequest()
      .setUrn(urn)
      .setId(id)
      .setProperties(toStruct(stripSecrets(props) as Props))
      .setOldInputs(toStruct(stripSecrets(oldInputs) as Props));
    this.calls.push(`Delete ${urnName(urn)}`);
    await this.timed(`Delete ${urnName(urn)}`, unary(this.client.delete.bind(this.client), req));
  }

  /** SIGINT to the process group, SIGKILL after 5 s (the engine's way). */
  async close(): Promise<void> {
    this.client.close();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-this.child.pid!, sig);
      } catch {
        /* already gone */
      }
    };
    kill('SIGINT');
    const timer = setTimeout(() => kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

export const urnName = (urn: string) => urn.split('::').pop()!;

export function urnOf(project: string, stack: string, type: string, name: string): string {
  return `urn:pulumi:${stack}::${project}::${type}::${name}`;
}
