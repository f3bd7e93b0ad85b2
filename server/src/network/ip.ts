// IPv4 arithmetic: addresses as unsigned 32-bit numbers (what used_ips.ip_in_long stores), netmasks, subnets.

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export const isIpv4 = (s: unknown): s is string => typeof s === 'string' && IPV4.test(s);

export function ipToLong(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function longToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Prefix length of a netmask, or undefined when it is not a contiguous mask. */
export function prefixOf(netmask: string): number | undefined {
  if (!isIpv4(netmask)) return undefined;
  const bits = ipToLong(netmask).toString(2).padStart(32, '0');
  return /^1*0*$/.test(bits) ? (bits.indexOf('0') === -1 ? 32 : bits.indexOf('0')) : undefined;
}

export const netmaskOf = (prefix: number): string => longToIp(prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix));

export interface Subnet {
  /** Network address as a number. */
  network: number;
  broadcast: number;
  prefix: number;
  netmask: string;
  /** e.g. `192.168.200.0/22` */
  cidr: string;
}

export function subnetOf(ip: string, prefix: number): Subnet {
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ipToLong(ip) / size) * size;
  return { network, broadcast: network + size - 1, prefix, netmask: netmaskOf(prefix), cidr: `${longToIp(network)}/${prefix}` };
}

/** `a.b.c.d/n` → its subnet (network address normalised), or undefined when it does not parse. */
export function parseCidr(cidr: string): Subnet | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m || !isIpv4(m[1]) || Number(m[2]) > 32) return undefined;
  return subnetOf(m[1], Number(m[2]));
}

export const inSubnet = (ip: number, s: Subnet) => ip >= s.network && ip <= s.broadcast;

export const overlaps = (aStart: number, aEnd: number, bStart: number, bEnd: number) => aStart <= bEnd && bStart <= aEnd;
