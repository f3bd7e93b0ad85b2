import { randomUUID } from 'node:crypto';

/** A ZStack uuid: v4 without dashes. */
export const newUuid = () => randomUUID().replace(/-/g, '');
export const isUuid = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{32}$/.test(s);
