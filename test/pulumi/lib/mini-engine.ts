// A minimal Pulumi engine for tests: a ResourceMonitor + Engine gRPC server, the Pulumi program run unchanged through
// @pulumi/pulumi's language runtime (`cmd/run`, with the project's `nodeargs` from Pulumi.yaml), and dynamic resources
// sent to the real dynamic-provider plugin (PluginHost). It follows the engine's rules as read from pulumi/pulumi's
// source (step_generator.go, provider_plugin.go): Check → Diff (olds = old outputs; DIFF_UNKNOWN falls back to an input
// comparison) → Create / Update / Replace (delete-before-replace or create-then-delete-at-the-end); no Create/Update in
// preview (the provider answered supportsPreview=false) and checked inputs stand in for outputs there; deletions of
// resources the program no longer declares after the program ends, dependents first; refresh = Read of every resource
// (empty id → dropped); destroy = Delete of every resource, dependents first, `retainOnDelete` honoured.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PluginHost, pluginEnv, urnName } from './plugin-host.js';
import { RUN_CMD, emptypb, enginegrpc, enginepb, fromStruct, grpc, hasSecret, respb, resgrpc, secret, toStruct, type Props } from './wire.js';

export type Op = 'create' | 'update' | 'same' | 'replace' | 'delete' | 'read' | 'refresh-same' | 'refresh-update' | 'refresh-delete' | 'retain';

export interface Step {
  op: Op;
  urn: string;
  name: string;
  type: string;
  replaces?: string[];
  deleteBeforeReplace?: boolean;
  /** Output keys a refresh changed. */
  changed?: string[];
}

export interface StateResource {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  parent: string;
  id: string;
  inputs: Props;
  outputs: Props;
  dependencies: string[];
  retainOnDelete: boolean;
  /** Read with `get`: not managed (never updated or deleted). */
  external?: boolean;
}

export interface RunResult {
  steps: Step[];
  outputs: Props;
  diagnostics: string[];
  errors: string[];
  exitCode: number | null;
  ok: boolean;
  ms: number;
  /** RPCs sent to the plugin, in order. */
  calls: string[];
}

export interface EngineOptions {
  projectDir: string;
  stack: string;
  config: Record<string, string>;
  secretKeys?: string[];
  env?: NodeJS.ProcessEnv;
  /** Kill the program after this long. */
  timeoutMs?: number;
  /** The project's own @pulumi/pulumi (its language host half and plugin, as the CLI would use); default the workspace's. */
  pulumiDir?: string;
}

type Cb = (e: import('@grpc/grpc-js').ServerErrorResponse | null, r?: unknown) => void;
const isDynamic = (type: string) => type.startsWith('pulumi-nodejs:dynamic');
const same = (a: unknown, b: unknown) => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Props)[k])]),
    );
  return v;
}
const withoutProvider = (p: Props) => Object.fromEntries(Object.entries(p).filter(([k]) => k !== '__provider'));

export class MiniEngine {
  readonly project: string;
  readonly nodeArgs: string[];
  /** Resources in registration order (dependencies before dependents). */
  state: StateResource[] = [];
  stackOutputs: Props = {};

  constructor(readonly opts: EngineOptions) {
    const manifest = parseYaml(readFileSync(join(opts.projectDir, 'Pulumi.yaml'), 'utf8')) as {
      name: string;
      runtime: string | { name: string; options?: { nodeargs?: string } };
    };
    this.project = manifest.name;
    const nodeargs = typeof manifest.runtime === 'object' ? manifest.runtime.options?.nodeargs : undefined;
    this.nodeArgs = nodeargs ? nodeargs.split(/\s+/).filter(Boolean) : [];
  }

  get stackUrn() {
    return `urn:pulumi:${this.opts.stack}::${this.project}::pulumi:pulumi:Stack::${this.project}-${this.opts.stack}`;
  }

  urnOf(type: string, name: string, parent: string): string {
    const parentType = parent && parent !== this.stackUrn ? `${parent.split('::')[2]}$` : '';
    return `urn:pulumi:${this.opts.stack}::${this.project}::${parentType}${type}::${name}`;
  }

  resource(name: string): StateResource | undefined {
    return this.state.find((r) => r.name === name);
  }

  private async startPlugin(): Promise<PluginHost> {
    const plugin = await PluginHost.start({
      cwd: this.opts.projectDir,
      project: this.project,
      config: this.opts.config,
      secretKeys: this.opts.secretKeys,
      env: this.opts.env,
      pulumiDir: this.opts.pulumiDir,
    });
    await plugin.getPluginInfo();
    await plugin.handshake();
    const conf = await plugin.configure();
    if (conf.supportsPreview || conf.acceptSecrets) throw new Error('unexpected Configure answer from the Node dynamic provider');
    return plugin;
  }

  preview(): Promise<RunResult> {
    return this.runProgram(true);
  }

  up(): Promise<RunResult> {
    return this.runProgram(false);
  }

  private async runProgram(preview: boolean): Promise<RunResult> {
    const started = Date.now();
    const steps: Step[] = [];
    const diagnostics: string[] = [];
    const errors: string[] = [];
    const old = new Map(this.state.map((r) => [r.urn, r]));
    const next: StateResource[] = [];
    const pendingDeletes: StateResource[] = [];
    let plugin: Promise<PluginHost> | undefined;
    const getPlugin = () => (plugin ??= this.startPlugin());
    let rootUrn = '';
    let stackOutputs: Props = {};

    const register = async (req: InstanceType<typeof respb.RegisterResourceRequest>) => {
      if (process.env.PULUMI_TEST_TIMINGS) console.error(`[engine] +${Date.now() - started} ms RegisterResource ${req.getName()}`);
      const type = req.getType();
      const name = req.getName();
      const parent = req.getParent();
      const custom = req.getCustom();
      const urn = this.urnOf(type, name, parent);
      const inputs = fromStruct(req.getObject());
      const deps = new Set(req.getDependenciesList());
      req.getPropertydependenciesMap().forEach((v) => v.getUrnsList().forEach((u) => deps.add(u)));
      const base = { urn, type, name, custom, parent, dependencies: [...deps], retainOnDelete: req.getRetainondelete() ?? false };
      if (!custom) {
        next.push({ ...base, id: '', inputs, outputs: {} });
        return { urn, id: '', outputs: {} };
      }
      if (!isDynamic(type)) throw new Error(`this test engine only runs dynamic resources, not ${type}`);
      const p = await getPlugin();
      const prev = old.get(urn);
      const checked = await p.check(urn, prev?.inputs ?? {}, inputs);
      if (checked.failures.length) {
        const msg = checked.failures.map((f) => `${f.property}: ${f.reason}`).join('; ');
        diagnostics.push(`error: ${urnName(urn)}: check failed: ${msg}`);
        throw new Error(`${urn}: check failed: ${msg}`);
      }
      const news = checked.inputs;
      // The engine copies secretness from inputs onto same-named outputs.
      const annotate = (outputs: Props) => Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, hasSecret(inputs[k]) ? secret(v) : v]));
      if (!prev) {
        steps.push({ op: 'create', urn, name, type });
        if (preview) return { urn, id: '', outputs: news };
        const r = await p.create(urn, news);
        if (!r.id) throw new Error(`${urn}: provider returned an empty id`);
        next.push({ ...base, id: r.id, inputs: news, outputs: r.properties });
        return { urn, id: r.id, outputs: annotate(r.properties) };
      }
      const d = await p.diff(urn, prev.id, prev.outputs, news, prev.inputs);
      const changes = d.changes === 'some' || (d.changes === 'unknown' && !same(withoutProvider(prev.inputs), withoutProvider(news)));
      if (!changes) {
        steps.push({ op: 'same', urn, name, type });
        next.push({ ...prev, ...base, inputs: news });
        return { urn, id: prev.id, outputs: annotate(prev.outputs) };
      }
      if (d.replaces.length) {
        steps.push({ op: 'replace', urn, name, type, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace });
        if (preview) return { urn, id: '', outputs: news };
        if (d.deleteBeforeReplace) await p.delete(urn, prev.id, prev.outputs, prev.inputs);
        else pendingDeletes.push(prev);
        const r = await p.create(urn, news);
        next.push({ ...base, id: r.id, inputs: news, outputs: r.properties });
        return { urn, id: r.id, outputs: annotate(r.properties) };
      }
      steps.push({ op: 'update', urn, name, type });
      if (preview) return { urn, id: prev.id, outputs: news };
      const r = await p.update(urn, prev.id, prev.outputs, news, prev.inputs);
      next.push({ ...base, id: prev.id, inputs: news, outputs: r.properties });
      return { urn, id: prev.id, outputs: annotate(r.properties) };
    };

    const read = async (req: InstanceType<typeof respb.ReadResourceRequest>) => {
      const urn = this.urnOf(req.getType(), req.getName(), req.getParent());
      const p = await getPlugin();
      const props = fromStruct(req.getProperties());
      const r = await p.read(urn, req.getId(), props, props);
      if (!r.id) throw new Error(`${urn}: resource ${req.getId()} does not exist`);
      steps.push({ op: 'read', urn, name: req.getName(), type: req.getType() });
      next.push({
        urn,
        type: req.getType(),
        name: req.getName(),
        custom: true,
        parent: req.getParent(),
        id: r.id,
        inputs: props,
        outputs: r.properties,
        dependencies: [],
        retainOnDelete: true,
        external: true,
      });
      return { urn, outputs: r.properties };
    };

    const server = new grpc.Server();
    const fail = (e: unknown) => {
      const message = e instanceof Error ? e.message : String(e);
      errors.push(message);
      return { code: grpc.status.UNKNOWN, details: message, message, name: 'Error', metadata: new grpc.Metadata() } as import('@grpc/grpc-js').ServiceError;
    };
    server.addService(resgrpc.ResourceMonitorService, {
      supportsFeature: (call: { request: InstanceType<typeof respb.SupportsFeatureRequest> }, cb: Cb) =>
        cb(null, new respb.SupportsFeatureResponse().setHassupport(call.request.getId() === 'secrets')),
      registerResource: (call: { request: InstanceType<typeof respb.RegisterResourceRequest> }, cb: Cb) => {
        register(call.request).then(
          ({ urn, id, outputs }) => cb(null, new respb.RegisterResourceResponse().setUrn(urn).setId(id).setObject(toStruct(outputs))),
          (e) => cb(fail(e)),
        );
      },
      readResource: (call: { request: InstanceType<typeof respb.ReadResourceRequest> }, cb: Cb) => {
        read(call.request).then(
          ({ urn, outputs }) => cb(null, new respb.ReadResourceResponse().setUrn(urn).setProperties(toStruct(outputs))),
          (e) => cb(fail(e)),
        );
      },
      registerResourceOutputs: (call: { request: InstanceType<typeof respb.RegisterResourceOutputsRequest> }, cb: Cb) => {
        if (call.request.getUrn() === this.stackUrn) stackOutputs = fromStruct(call.request.getOutputs());
        cb(null, new emptypb.Empty());
      },
    });
    server.addService(enginegrpc.EngineService, {
      log: (call: { request: InstanceType<typeof enginepb.LogRequest> }, cb: Cb) => {
        const sev = ['debug', 'info', 'warning', 'error'][call.request.getSeverity()];
        if (sev !== 'debug') diagnostics.push(`${sev}: ${call.request.getMessage()}`);
        cb(null, new emptypb.Empty());
      },
      getRootResource: (_call: unknown, cb: Cb) => cb(null, new enginepb.GetRootResourceResponse().setUrn(rootUrn)),
      setRootResource: (call: { request: InstanceType<typeof enginepb.SetRootResourceRequest> }, cb: Cb) => {
        rootUrn = call.request.getUrn();
        cb(null, new enginepb.SetRootResourceResponse());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );

    let exitCode: number | null = null;
    try {
      // The real engine starts the plugin when the first `pulumi-nodejs` resource arrives; starting it while the
      // program loads saves a second or two per run and changes nothing the plugin sees.
      getPlugin().catch(() => undefined);
      exitCode = await this.spawnProgram(port, preview, diagnostics);
      if (process.env.PULUMI_TEST_TIMINGS) console.error(`[engine] +${Date.now() - started} ms program exited ${exitCode}`);
      const ok = exitCode === 0 && errors.length === 0;
      if (!preview && ok) {
        // Deletions: what the program no longer declares, and the old halves of create-before-delete replacements.
        const declared = new Set(next.map((r) => r.urn));
        const gone = [...this.state.filter((r) => !declared.has(r.urn)), ...pendingDeletes];
        const order = (r: StateResource) => this.state.findIndex((x) => x.urn === r.urn);
        gone.sort((a, b) => order(b) - order(a));
        for (const r of gone) await this.deleteOne(r, await (r.custom && isDynamic(r.type) ? getPlugin() : Promise.resolve(undefined)), steps);
      }
      if (!preview) {
        if (ok) this.state = next;
        else {
          // A failed update keeps what it did and everything it did not get to.
          const done = new Set(next.map((r) => r.urn));
          this.state = [...next, ...this.state.filter((r) => !done.has(r.urn))];
        }
        if (ok) this.stackOutputs = stackOutputs;
      }
      return { steps, outputs: stackOutputs, diagnostics, errors, exitCode, ok, ms: Date.now() - started, calls: plugin ? (await plugin).calls : [] };
    } finally {
      if (plugin) {
        const p = await plugin.catch(() => undefined);
        if (p) {
          if (p.stderr.trim())
            diagnostics.push(
              ...p.stderr
                .trim()
                .split('\n')
                .map((l) => `plugin: ${l}`),
            );
          await p.close();
        }
      }
      server.forceShutdown();
    }
  }

  private async deleteOne(r: StateResource, p: PluginHost | undefined, steps: Step[]) {
    if (r.external) return;
    if (r.retainOnDelete) {
      steps.push({ op: 'retain', urn: r.urn, name: r.name, type: r.type });
      return;
    }
    steps.push({ op: 'delete', urn: r.urn, name: r.name, type: r.type });
    if (p) await p.delete(r.urn, r.id, r.outputs, r.inputs);
  }

  private spawnProgram(port: number, preview: boolean, diagnostics: string[]): Promise<number | null> {
    const args = [
      ...this.nodeArgs,
      this.opts.pulumiDir ? join(this.opts.pulumiDir, 'cmd', 'run') : RUN_CMD,
      `--monitor=127.0.0.1:${port}`,
      `--engine=127.0.0.1:${port}`,
      `--organization=organization`,
      `--project=${this.project}`,
      `--stack=${this.opts.stack}`,
      `--root-directory=${this.opts.projectDir}`,
      `--pwd=${this.opts.projectDir}`,
      '--parallel=16',
      ...(preview ? ['--dry-run'] : []),
      '.',
    ];
    const child = spawn(process.execPath, args, {
      cwd: this.opts.projectDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: pluginEnv({
        ...this.opts.env,
        PULUMI_CONFIG: JSON.stringify(this.opts.config),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(this.opts.secretKeys ?? []),
      }),
    });
    child.stdout!.on('data', (d) =>
      diagnostics.push(
        ...String(d)
          .trim()
          .split('\n')
          .map((l) => `stdout: ${l}`),
      ),
    );
    child.stderr!.on('data', (d) =>
      diagnostics.push(
        ...String(d)
          .trim()
          .split('\n')
          .map((l) => `stderr: ${l}`),
      ),
    );
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), this.opts.timeoutMs ?? 120_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  /** `pulumi refresh`: Read every resource; the state takes what the provider reports (empty id → dropped). */
  async refresh(): Promise<RunResult> {
    const started = Date.now();
    const steps: Step[] = [];
    const diagnostics: string[] = [];
    const errors: string[] = [];
    const plugin = this.state.some((r) => r.custom && isDynamic(r.type)) ? await this.startPlugin() : undefined;
    try {
      const next: StateResource[] = [];
      for (const r of this.state) {
        if (!plugin || !r.custom || !isDynamic(r.type)) {
          next.push(r);
          continue;
        }
        try {
          const res = await plugin.read(r.urn, r.id, r.outputs, r.inputs);
          if (!res.id) {
            steps.push({ op: 'refresh-delete', urn: r.urn, name: r.name, type: r.type });
            continue;
          }
          const before = withoutProvider(r.outputs);
          const after = withoutProvider(res.properties);
          const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !same(before[k], after[k]));
          steps.push({ op: changed.length ? 'refresh-update' : 'refresh-same', urn: r.urn, name: r.name, type: r.type, changed });
          next.push({ ...r, id: res.id, outputs: res.properties, inputs: res.inputs ?? r.inputs });
        } catch (e) {
          errors.push(e instanceof Error ? e.message : String(e));
          next.push(r);
        }
      }
      this.state = next;
      return {
        steps,
        outputs: this.stackOutputs,
        diagnostics,
        errors,
        exitCode: 0,
        ok: errors.length === 0,
        ms: Date.now() - started,
        calls: plugin?.calls ?? [],
      };
    } finally {
      if (plugin) {
        if (plugin.stderr.trim())
          diagnostics.push(
            ...plugin.stderr
              .trim()
              .split('\n')
              .map((l) => `plugin: ${l}`),
          );
        await plugin.close();
      }
    }
  }

  /** `pulumi destroy`: Delete everything, dependents first. */
  async destroy(): Promise<RunResult> {
    const started = Date.now();
    const steps: Step[] = [];
    const diagnostics: string[] = [];
    const errors: string[] = [];
    const plugin = this.state.some((r) => r.custom && isDynamic(r.type)) ? await this.startPlugin() : undefined;
    try {
      const remaining = [...this.state];
      for (const r of [...this.state].reverse()) {
        try {
          await this.deleteOne(r, r.custom && isDynamic(r.type) ? plugin : undefined, steps);
          remaining.splice(remaining.indexOf(r), 1);
        } catch (e) {
          errors.push(e instanceof Error ? e.message : String(e));
          break;
        }
      }
      this.state = remaining;
      if (!remaining.length) this.stackOutputs = {};
      return { steps, outputs: {}, diagnostics, errors, exitCode: 0, ok: errors.length === 0, ms: Date.now() - started, calls: plugin?.calls ?? [] };
    } finally {
      if (plugin) {
        if (plugin.stderr.trim())
          diagnostics.push(
            ...plugin.stderr
              .trim()
              .split('\n')
              .map((l) => `plugin: ${l}`),
          );
        await plugin.close();
      }
    }
  }
}

/** `{ create: [...names], update: [...], … }` for assertions. */
export function summarize(steps: Step[]): Partial<Record<Op, string[]>> {
  const out: Partial<Record<Op, string[]>> = {};
  for (const s of steps) (out[s.op] ??= []).push(s.name);
  for (const k of Object.keys(out) as Op[]) out[k]!.sort();
  return out;
}
