// Global configuration: typed, validated settings stored in the database (the stored value wins over the
// default), read from memory, changed by UpdateGlobalConfig, announced on the event bus so modules react.
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/index.js';
import { globalConfigs } from '../db/schema/index.js';
import { formatDuration, parseDuration } from './duration.js';
import { MAX_TIMEOUT_MS } from './input.js';

const MAX_PERIOD_SECONDS = 10 * 365 * 86400;
import { argErr } from './errors.js';
import { apiNameOfClass } from './api-timeouts.js';
import type { EventBus } from './events.js';

export type ConfigType = 'int' | 'bool' | 'string' | 'duration' | 'seconds';

export interface ConfigDef {
  category: string;
  name: string;
  type: ConfigType;
  defaultValue: string;
  description: string;
  /** Inclusive bounds for numbers (int, seconds) or milliseconds (duration). */
  min?: number;
  max?: number;
  validValues?: string[];
}

const key = (category: string, name: string) => `${category}/${name}`;

export class GlobalConfigService {
  private defs = new Map<string, ConfigDef>();
  private values = new Map<string, string>();

  constructor(
    private db: Db,
    private events: EventBus,
  ) {}

  define(def: ConfigDef): void {
    this.check(def, def.defaultValue);
    this.defs.set(key(def.category, def.name), def);
    this.values.set(key(def.category, def.name), def.defaultValue);
  }

  resolve(category: string, name: string): ConfigDef {
    let real = name;
    // Upstream names an API's timeout by its message class: org.zstack.header.vm.APICreateVmInstanceMsg.
    if (category === 'apiTimeout' && !this.defs.has(key(category, real))) real = apiNameOfClass(real) ?? real;
    const def = this.defs.get(key(category, real));
    if (!def) throw argErr(`Unable to find GlobalConfig[category: ${category}, name: ${name}]`);
    return def;
  }

  /** Inserts missing rows, then loads every stored value (stored values win over defaults). */
  async load(): Promise<void> {
    const rows = [...this.defs.values()].map((d) => ({
      category: d.category,
      name: d.name,
      description: d.description,
      defaultValue: d.defaultValue,
      value: d.defaultValue,
    }));
    for (let i = 0; i < rows.length; i += 500) {
      await this.db
        .insert(globalConfigs)
        .values(rows.slice(i, i + 500))
        .onConflictDoNothing();
    }
    await this.reload();
  }

  async reload(): Promise<void> {
    for (const row of await this.db.select().from(globalConfigs)) {
      const k = key(row.category, row.name);
      const def = this.defs.get(k);
      if (!def) continue;
      try {
        this.values.set(k, this.check(def, row.value));
      } catch {
        console.error(`[config] stored value of ${k} is invalid (${row.value}); using the default ${def.defaultValue}`);
      }
    }
  }

  get(category: string, name: string): string {
    const def = this.resolve(category, name);
    return this.values.get(key(def.category, def.name))!;
  }

  getNumber(category: string, name: string): number {
    return Number(this.get(category, name));
  }

  getBool(category: string, name: string): boolean {
    return this.get(category, name) === 'true';
  }

  /** A duration setting in milliseconds (`seconds` settings are converted). */
  getMs(category: string, name: string): number {
    const def = this.resolve(category, name);
    const v = this.get(category, name);
    return def.type === 'seconds' ? Number(v) * 1000 : parseDuration(v)!;
  }

  isDefault(category: string, name: string): boolean {
    const def = this.resolve(category, name);
    return this.get(category, name) === def.defaultValue;
  }

  async update(category: string, name: string, value: string): Promise<typeof globalConfigs.$inferSelect> {
    const def = this.resolve(category, name);
    const normalized = this.check(def, value);
    const [row] = await this.db
      .update(globalConfigs)
      .set({ value: normalized })
      .where(and(eq(globalConfigs.category, def.category), eq(globalConfigs.name, def.name)))
      .returning();
    this.values.set(key(def.category, def.name), normalized);
    this.events.emit('globalConfig.updated', { category: def.category, name: def.name, value: normalized });
    return row;
  }

  /** Validates a value for a setting and returns it normalized; SYS.1007 names the setting and the problem. */
  check(def: ConfigDef, raw: string): string {
    const value = String(raw).trim();
    const where = `GlobalConfig[category: ${def.category}, name: ${def.name}]`;
    // Without a bound of its own a number stays within what its users can take: int columns and LIMITs (2^31 − 1),
    // periods (seconds: 10 years; timers clamp to 24.8 days, app.every) and durations (API timeouts: 24.8 days).
    const max = def.max ?? (def.type === 'int' ? 2 ** 31 - 1 : def.type === 'seconds' ? MAX_PERIOD_SECONDS : MAX_TIMEOUT_MS);
    const min = def.min ?? -(2 ** 31 - 1);
    const range = (n: number, unit = '') => {
      if (n < min) throw argErr(`${where}: value ${value} is below the minimum ${min}${unit}`);
      if (n > max) throw argErr(`${where}: value ${value} is above the maximum ${max}${unit}`);
    };
    switch (def.type) {
      case 'int':
      case 'seconds': {
        if (!/^-?\d{1,16}$/.test(value)) throw argErr(`${where}: value[${value}] is not an integer`);
        range(Number(value));
        return String(Number(value));
      }
      case 'bool': {
        const v = value.toLowerCase();
        if (v !== 'true' && v !== 'false') throw argErr(`${where}: value[${value}] is not true or false`);
        return v;
      }
      case 'duration': {
        const ms = parseDuration(value);
        if (ms === undefined) throw argErr(`${where}: value[${value}] is not a duration (e.g. 30m, 6h, 2d, or milliseconds)`);
        range(ms, ' ms');
        return value.replace(/\s+/g, '');
      }
      default:
        if (def.validValues && !def.validValues.includes(value)) {
          throw argErr(`${where}: valid values are [${def.validValues.join(', ')}], but ${value} found`);
        }
        return value;
    }
  }
}

export { formatDuration };
