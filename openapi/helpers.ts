// Type helpers over the generated operation types, shared by the server (handler signatures) and the SDK
// (method signatures). Nothing here is written per operation.
import type { operations } from './generated/api.js';

export type OperationId = keyof operations;
type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type BodyOf<K extends OperationId> = operations[K] extends { requestBody?: infer R } ? Json<NonNullable<R>> : never;
type InnerOf<B> = [B] extends [never] ? {} : B extends object ? NonNullable<B[Exclude<keyof B, 'systemTags' | 'userTags'>]> : {};
// `[T] extends [never]` first: under `exactOptionalPropertyTypes` an absent group (`query?: never`) infers `never`, which
// a distributive `T extends object` would turn into `never` for the whole parameter type.
type ObjectOr<T> = [T] extends [never] ? {} : T extends object ? T : {};
type PathOf<K extends OperationId> = operations[K]['parameters'] extends { path?: infer P } ? ObjectOr<NonNullable<P>> : {};
type QueryOf<K extends OperationId> = operations[K]['parameters'] extends { query?: infer Q } ? ObjectOr<NonNullable<Q>> : {};

/** The fields of an API call: path variables, body fields and query fields together, as in a ZStack message. */
export type ParamsOf<K extends OperationId> = InnerOf<BodyOf<K>> & PathOf<K> & QueryOf<K>;

/** What an API returns (for asynchronous APIs: what its job returns). */
export type ReplyOf<K extends OperationId> = operations[K]['responses'] extends { 200: infer R } ? Json<R> : never;

/** An inventory schema by name, e.g. `Inventory<'ZoneInventory'>`. */
export type Inventory<N extends keyof import('./generated/api.js').components['schemas']> = import('./generated/api.js').components['schemas'][N];

/** ZStack's error shape (components.schemas.ErrorCode): the one ErrorCode type of the server, the agents and the SDK. */
export type ErrorCode = import('./generated/api.js').components['schemas']['ErrorCode'];
