// The one duration grammar lives with the spec (openapi/shared/duration.ts), shared by the generator and the SDK.
export { formatDuration, parseDuration } from '@zstack-ts/openapi/duration';
