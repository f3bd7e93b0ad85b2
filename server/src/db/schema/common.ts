import { timestamp } from 'drizzle-orm/pg-core';

/** createDate / lastOpDate as every ZStack resource has them. */
export const dates = () => ({
  createDate: timestamp('create_date', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  lastOpDate: timestamp('last_op_date', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

export const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
