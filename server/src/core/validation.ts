// Request (and, in tests, response) validation from the spec's own schemas, compiled once with Ajv (JSON Schema
// 2020-12, the dialect of OpenAPI 3.1). Errors name the offending field the way upstream does.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { argErr } from './errors.js';

export class SpecValidator {
  private ajv: Ajv2020;
  private cache = new Map<string, ValidateFunction>();
  private static shared = new WeakMap<object, Map<string, SpecValidator>>();

  /**
   * The validator of `doc` with `opts`, one per process: compiled validators are pure functions of the document and
   * the options, so every server built in this process (tests start dozens) shares them instead of recompiling.
   */
  static of(doc: Record<string, unknown>, opts: { coerce?: boolean; removeAdditional?: boolean } = {}): SpecValidator {
    let byOpts = SpecValidator.shared.get(doc);
    if (!byOpts) SpecValidator.shared.set(doc, (byOpts = new Map()));
    const key = `${!!opts.coerce}/${!!opts.removeAdditional}`;
    let v = byOpts.get(key);
    if (!v) byOpts.set(key, (v = new SpecValidator(doc, opts)));
    return v;
  }

  /** `removeAdditional`: properties a schema closes with `additionalProperties: false` are removed, not refused. */
  constructor(doc: Record<string, unknown>, opts: { coerce?: boolean; removeAdditional?: boolean } = {}) {
    this.ajv = new Ajv2020({
      strict: false,
      allErrors: false,
      coerceTypes: opts.coerce ? 'array' : false,
      useDefaults: false,
      removeAdditional: opts.removeAdditional ?? false,
    });
    (addFormats as unknown as (a: Ajv2020) => void)(this.ajv);
    this.ajv.addSchema({ ...doc, $id: 'openapi.json' });
  }

  /**
   * A validator for the schema at a JSON pointer of the document (or an object schema built around pointers),
   * compiled on its first use: compiling all ~1,000 of them up front cost seconds of every start.
   */
  compile(key: string, schema: Record<string, unknown>): ValidateFunction {
    let fn = this.cache.get(key);
    if (!fn) {
      fn = this.lazy(schema);
      this.cache.set(key, fn);
    }
    return fn;
  }

  private lazy(schema: Record<string, unknown>): ValidateFunction {
    const ajv = this.ajv;
    let compiled: ValidateFunction | undefined;
    const validate = ((data: unknown) => {
      compiled ??= ajv.compile(schema);
      const ok = compiled(data) as boolean;
      validate.errors = compiled.errors;
      return ok;
    }) as ValidateFunction;
    validate.errors = null;
    return validate;
  }

  static ref(pointer: string) {
    return { $ref: `openapi.json${pointer}` };
  }
}

/** Turns the first Ajv error into SYS.1007 naming the field, e.g. `field[params.name] ...`. */
export function validationError(errors: ErrorObject[] | null | undefined, root: string): Error {
  const e = errors?.[0];
  if (!e) return argErr(`invalid ${root}`);
  const path = [root, ...e.instancePath.split('/').filter(Boolean)].filter(Boolean).join('.');
  switch (e.keyword) {
    case 'required':
      return argErr(`field[${join(path, (e.params as any).missingProperty)}] is mandatory, can not be null`);
    case 'additionalProperties':
      return argErr(`field[${join(path, (e.params as any).additionalProperty)}] is not a parameter of this API`);
    case 'enum':
      return argErr(`valid values for field[${path}] are [${(e.params as any).allowedValues.join(', ')}]`);
    case 'type':
      return argErr(`field[${path}] must be ${(e.params as any).type}`);
    case 'maxLength':
      return argErr(`field[${path}] exceeds max length of ${(e.params as any).limit}`);
    case 'minLength':
      return argErr(`field[${path}] must be at least ${(e.params as any).limit} characters long`);
    case 'minimum':
    case 'maximum':
      return argErr(`field[${path}] ${e.message}`);
    case 'pattern':
      return argErr(`field[${path}] has an invalid value (must match ${(e.params as any).pattern})`);
    default:
      return argErr(`field[${path}] ${e.message ?? 'is invalid'}`);
  }
}

const join = (a: string, b: string) => (a ? `${a}.${b}` : b);
