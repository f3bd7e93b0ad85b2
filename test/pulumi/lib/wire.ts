// What the test engine shares with @pulumi/pulumi: the generated gRPC stubs (loaded from the SDK's own copy, so
// client, server and messages use one @grpc/grpc-js) and the wire sentinels of runtime/rpc.js.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const PULUMI_DIR = dirname(require.resolve('@pulumi/pulumi/package.json'));
const fromPulumi = createRequire(join(PULUMI_DIR, 'package.json'));

export const grpc = fromPulumi('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
export const structpb = fromPulumi('google-protobuf/google/protobuf/struct_pb') as typeof import('google-protobuf/google/protobuf/struct_pb.js');
export const emptypb = fromPulumi('google-protobuf/google/protobuf/empty_pb') as typeof import('google-protobuf/google/protobuf/empty_pb.js');
export const provpb = fromPulumi('./proto/provider_pb') as typeof import('@pulumi/pulumi/proto/provider_pb.js');
export const provgrpc = fromPulumi('./proto/provider_grpc_pb') as typeof import('@pulumi/pulumi/proto/provider_grpc_pb.js');
export const respb = fromPulumi('./proto/resource_pb') as typeof import('@pulumi/pulumi/proto/resource_pb.js');
export const resgrpc = fromPulumi('./proto/resource_grpc_pb') as typeof import('@pulumi/pulumi/proto/resource_grpc_pb.js');
export const enginepb = fromPulumi('./proto/engine_pb') as typeof import('@pulumi/pulumi/proto/engine_pb.js');
export const enginegrpc = fromPulumi('./proto/engine_grpc_pb') as typeof import('@pulumi/pulumi/proto/engine_grpc_pb.js');
export const pluginpb = fromPulumi('./proto/plugin_pb') as typeof import('@pulumi/pulumi/proto/plugin_pb.js');

/** The plugin the engine starts for `pulumi-nodejs` (dynamic) resources, as shipped in the SDK. */
export const DYNAMIC_PLUGIN = join(PULUMI_DIR, 'pulumi-resource-pulumi-nodejs');
/** The Node half of the language host. */
export const RUN_CMD = join(PULUMI_DIR, 'cmd', 'run');

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const EXAMPLE_DIR = join(REPO, 'examples', 'pulumi-flat-network');

/** runtime/rpc.js sentinels. */
export const UNKNOWN = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';
export const SIG_KEY = '4dabf18193072939515e22adb298388d';
export const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';

export type Props = Record<string, unknown>;

export const secret = (value: unknown) => ({ [SIG_KEY]: SECRET_SIG, value });
export const isSecret = (v: unknown): v is { value: unknown } => !!v && typeof v === 'object' && (v as Props)[SIG_KEY] === SECRET_SIG;

/** Removes secret wrappers, as the engine does for a provider that answered Configure with acceptSecrets=false. */
export function stripSecrets(v: unknown): unknown {
  if (isSecret(v)) return stripSecrets(v.value);
  if (Array.isArray(v)) return v.map(stripSecrets);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stripSecrets(x)]));
  return v;
}

export function hasSecret(v: unknown): boolean {
  if (isSecret(v)) return true;
  if (Array.isArray(v)) return v.some(hasSecret);
  if (v && typeof v === 'object') return Object.values(v).some(hasSecret);
  return false;
}

export const toStruct = (v: Props) =>
  structpb.Struct.fromJavaScript(v as Record<string, import('google-protobuf/google/protobuf/struct_pb.js').JavaScriptValue>);
export const fromStruct = (s: { toJavaScript(): unknown } | undefined): Props => (s ? (s.toJavaScript() as Props) : {});

/** Promisifies a unary gRPC client call. */
export function unary<Req, Res>(
  fn: (
    req: Req,
    metadata: import('@grpc/grpc-js').Metadata,
    options: Partial<import('@grpc/grpc-js').CallOptions>,
    cb: (err: import('@grpc/grpc-js').ServiceError | null, res: Res) => void,
  ) => unknown,
  req: Req,
  timeoutMs = 120_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** What the plugin uses to load a serialized provider (`requireFromString(text).handler()`). */
export const requireFromString = fromPulumi('require-from-string') as (code: string, filename?: string) => { handler(): unknown };
