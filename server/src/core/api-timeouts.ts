// API timeouts from `zstack.properties` in the exact v1.1 syntax of the release notes:
//   ApiTimeout.org.zstack.header.image.APIAddImageMsg= org.zstack.header.storage.backup.DownloadImageMsg, \
//       org.zstack.storage.backup.sftp.SftpBackupStorageCommands$DownloadCmd; 6h
// Parsed as upstream did (exactly one `;`, duration: bare number = ms, units s/m/h/d). The API class maps onto our
// API name (APIAddImageMsg → AddImage); the internal message/command classes ("relatives") map onto the agent
// calls they stand for, which then get that budget (never more than the API's remaining time).
import { readFileSync } from 'node:fs';
import { MAX_TIMEOUT_MS } from './input.js';

export interface PropertyTimeouts {
  /** API name → ms */
  apis: Map<string, number>;
  /** agent path → ms */
  agentPaths: Map<string, number>;
  warnings: string[];
}

/** Upstream internal messages / agent commands → the agent call of ours that does that work. */
const RELATIVES: Record<string, string> = {
  DownloadImageMsg: '/backupstorage/download',
  DownloadCmd: '/backupstorage/download',
  DeleteBitsOnBackupStorageMsg: '/backupstorage/delete',
  DeleteCmd: '/backupstorage/delete',
  StartVmOnHypervisorMsg: '/vm/start',
  StartVmCmd: '/vm/start',
  StopVmOnHypervisorMsg: '/vm/stop',
  StopVmCmd: '/vm/stop',
  RebootVmOnHypervisorMsg: '/vm/reboot',
  RebootVmCmd: '/vm/reboot',
  DestroyVmOnHypervisorMsg: '/vm/destroy',
  DestroyVmCmd: '/vm/destroy',
  MigrateVmOnHypervisorMsg: '/vm/migrate',
  MigrateVmCmd: '/vm/migrate',
  AttachVolumeToVmOnHypervisorMsg: '/vm/attachdatavolume',
  AttachDataVolumeCmd: '/vm/attachdatavolume',
  DetachVolumeFromVmOnHypervisorMsg: '/vm/detachdatavolume',
  DetachDataVolumeCmd: '/vm/detachdatavolume',
  InstantiateVolumeOnPrimaryStorageMsg: '/primarystorage/volume/create',
  CreateEmptyVolumeCmd: '/primarystorage/volume/create',
  ConnectHostMsg: '/host/connect',
  ConnectCmd: '/host/connect',
  PingHostMsg: '/host/ping',
  PingCmd: '/host/ping',
  GetVncPortCmd: '/vm/getvncport',
};

/** Upstream's parseTimeout: a bare integer is milliseconds; s/m/h/d units. */
export function parseUpstreamDuration(text: string): number | undefined {
  const m = /^(\d+)([sSmMhHdD]?)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2].toLowerCase() as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** `org.zstack.header.image.APIAddImageMsg` → `AddImage`. */
export function apiNameOfClass(fqcn: string): string | undefined {
  const simple = fqcn.trim().split('.').pop()!.split('$').pop()!;
  return /^API(\w+)Msg$/.exec(simple)?.[1];
}

/** Joins `\`-continued lines as Java properties do, keeping the number of each logical line's first line. */
function logicalLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let current: { line: number; text: string } | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const piece = current ? raw.trimStart() : raw;
    if (!current) current = { line: i + 1, text: '' };
    if (/(^|[^\\])(\\\\)*\\$/.test(piece)) current.text += piece.slice(0, -1);
    else {
      current.text += piece;
      out.push(current);
      current = undefined;
    }
  });
  if (current) out.push(current);
  return out;
}

export function parseZStackProperties(text: string, knownApis: Set<string>, source = 'zstack.properties'): PropertyTimeouts {
  const result: PropertyTimeouts = { apis: new Map(), agentPaths: new Map(), warnings: [] };
  for (const { line, text: l } of logicalLines(text)) {
    const trimmed = l.trim();
    if (!trimmed || trimmed.startsWith('#') || trimmed.startsWith('!')) continue;
    const sep = trimmed.search(/[=:]/);
    const key = (sep < 0 ? trimmed : trimmed.slice(0, sep)).trim();
    if (!key.startsWith('ApiTimeout.')) continue;
    const where = `${source} line ${line} (${key})`;
    const value = sep < 0 ? '' : trimmed.slice(sep + 1);
    const fqcn = key.slice('ApiTimeout.'.length);
    const api = apiNameOfClass(fqcn);
    if (!api) throw new Error(`${where}: ${fqcn} is not an API message class (expected ...API<Name>Msg)`);
    if (!knownApis.has(api)) throw new Error(`${where}: there is no API ${api} (from ${fqcn})`);
    const parts = value.split(';');
    if (parts.length !== 2) {
      throw new Error(
        `${where}: the value must be '<comma-separated internal message/command classes>; <timeout>' with exactly one ';', got [${value.trim()}]`,
      );
    }
    const ms = parseUpstreamDuration(parts[1]);
    if (ms === undefined || ms < 1000 || ms > MAX_TIMEOUT_MS) {
      throw new Error(
        `${where}: timeout [${parts[1].trim()}] is not a duration of at least 1 s and at most 24.8 days (a number of ms, or with unit s, m, h, d)`,
      );
    }
    result.apis.set(api, ms);
    for (const relative of parts[0]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const simple = relative.split('.').pop()!.split('$').pop()!;
      const path = RELATIVES[simple];
      if (path) result.agentPaths.set(path, Math.max(ms, result.agentPaths.get(path) ?? 0));
      else result.warnings.push(`${where}: ${relative} has no counterpart here; ignored`);
    }
  }
  return result;
}

export function loadZStackProperties(file: string, knownApis: Set<string>): PropertyTimeouts {
  return parseZStackProperties(readFileSync(file, 'utf8'), knownApis, file);
}
