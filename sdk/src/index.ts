export {
  ZStackClient,
  hashPassword,
  newJobUuid,
  type ClientOptions,
  type ClientHooks,
  type RequestEvent,
  type ResponseEvent,
  type ErrorEvent,
} from './client.js';
export { ZStackError, SDK_ERRORS, isNotFound, isTimeout, isZStackError, type ErrorCodeJson, type FailedRequest } from './errors.js';
export { conditionsOf } from './query.js';
export { parseZStackDate, isoDates } from './dates.js';
export type {
  CallOptions,
  CallParams,
  FieldOf,
  ReplyWithFields,
  Conditions,
  ConditionOperator,
  ConditionValue,
  InventoryOf,
  JobHandle,
  JobProgress,
  OperationInfo,
  ParamInfo,
  ParamsOf,
  QueryAllOptions,
  QueryParams,
  ReplyOf,
  RetryOptions,
  ApiName,
} from './types.js';
export { OPERATIONS, PARAMS, INVENTORY_FIELDS, DATE_FIELDS, type OperationId } from './generated/operations.js';
