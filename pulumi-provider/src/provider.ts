// The dynamic providers as Pulumi serializes them. `pulumi.dynamic.Resource` turns each provider object into the text
// of a CommonJS module (`serializeFunction(() => provider)`), which the dynamic-provider plugin loads with plain Node.
// So each method here is a thin shell that must capture nothing but plain values and `loadRuntime` (itself
// self-contained): the SDK, axios and the rest are imported *inside* the methods, at run time, in the plugin
// (see ../shared/reference/pulumi-dynamic.md, pitfalls 6–9). Credentials arrive through `configure` and stay in the
// plugin's memory (never in `this`, which would be serialized if it were configured in the program's process).
import type * as pulumi from '@pulumi/pulumi';
import type { ResourceKind } from './types.js';

type Runtime = typeof import('./runtime/index.js');

/**
 * Loads `@zstack-ts/pulumi/runtime` once per process (the package's built ES modules; from a CommonJS program too:
 * `import()` stays a dynamic import in the CommonJS build). Resolution starts from the working directory, which the
 * engine sets to the Pulumi project, so the plugin finds the package in the project's node_modules.
 */
export function loadRuntime(): Promise<Runtime> {
  const g = globalThis as typeof globalThis & { __zstackPulumiRuntime?: Promise<Runtime> };
  if (!g.__zstackPulumiRuntime) {
    const specifier = '@zstack-ts/pulumi/runtime';
    const loading = import(specifier) as Promise<Runtime>;
    g.__zstackPulumiRuntime = loading;
    loading.catch(() => {
      if (g.__zstackPulumiRuntime === loading) delete g.__zstackPulumiRuntime;
    });
  }
  return g.__zstackPulumiRuntime;
}

/** A fresh provider object for one resource kind (the resource classes share one per kind). */
export function makeProvider(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  return {
    async configure(req) {
      (await loadRuntime()).configure(this, req.config);
    },
    async check(olds, news) {
      return (await loadRuntime()).check(kind, olds, news);
    },
    async diff(id, olds, news) {
      return (await loadRuntime()).diff(kind, id, olds, news);
    },
    async create(inputs) {
      return (await loadRuntime()).create(this, kind, inputs);
    },
    async read(id, props) {
      return (await loadRuntime()).read(this, kind, id, props);
    },
    async update(id, olds, news) {
      return (await loadRuntime()).update(this, kind, id, olds, news);
    },
    async delete(id, props) {
      await (await loadRuntime()).remove(this, kind, id, props);
    },
  };
}

/** One provider object per kind: `pulumi.dynamic.Resource` serializes each once and caches the text. */
export const providers: Record<ResourceKind, pulumi.dynamic.ResourceProvider> = {
  L2Network: makeProvider('L2Network'),
  L3Network: makeProvider('L3Network'),
  IpRange: makeProvider('IpRange'),
  NetworkServiceProviderAttachment: makeProvider('NetworkServiceProviderAttachment'),
  NetworkServiceAttachment: makeProvider('NetworkServiceAttachment'),
  Vip: makeProvider('Vip'),
  Eip: makeProvider('Eip'),
  SecurityGroup: makeProvider('SecurityGroup'),
  SecurityGroupRule: makeProvider('SecurityGroupRule'),
  SecurityGroupAttachment: makeProvider('SecurityGroupAttachment'),
};
