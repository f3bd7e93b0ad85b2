// The built-in network service providers (upstream creates them at database initialisation, zstack-api.md §4.3).
// Every server start inserts whatever is missing, so several servers starting at once on one database agree.
import { eq } from 'drizzle-orm';
import type { Tx } from '../db/index.js';
import { networkServiceProviders, networkServiceTypes } from '../db/schema/index.js';
import { newUuid } from '../core/ids.js';

export interface BuiltInProvider {
  type: string;
  name: string;
  description: string;
  serviceTypes: string[];
}

export const BUILT_IN_PROVIDERS: BuiltInProvider[] = [
  {
    type: 'VirtualRouter',
    name: 'VirtualRouter',
    description: 'zstack virtual router network service provider',
    serviceTypes: ['DHCP', 'DNS', 'SNAT', 'PortForwarding', 'Eip', 'LoadBalancer'],
  },
  // The v1.1 Flat provider offers DHCP and Userdata (the release notes' §9 shows exactly these two).
  { type: 'Flat', name: 'Flat Network Service Provider', description: 'Flat Network Service Provider', serviceTypes: ['DHCP', 'Userdata'] },
  { type: 'SecurityGroup', name: 'SecurityGroup', description: 'zstack security group network service provider', serviceTypes: ['SecurityGroup'] },
];

/** Order in which a provider's service types are listed: as declared above, unknown ones after, by name. */
export function serviceTypeOrder(providerType: string): (a: string, b: string) => number {
  const declared = BUILT_IN_PROVIDERS.find((p) => p.type === providerType)?.serviceTypes ?? [];
  const rank = (t: string) => (declared.includes(t) ? declared.indexOf(t) : declared.length);
  return (a, b) => rank(a) - rank(b) || a.localeCompare(b);
}

export async function seedProviders(db: Tx): Promise<void> {
  for (const p of BUILT_IN_PROVIDERS) {
    await db.insert(networkServiceProviders).values({ uuid: newUuid(), name: p.name, description: p.description, type: p.type }).onConflictDoNothing();
    const [row] = await db.select({ uuid: networkServiceProviders.uuid }).from(networkServiceProviders).where(eq(networkServiceProviders.type, p.type));
    await db
      .insert(networkServiceTypes)
      .values(p.serviceTypes.map((serviceType) => ({ providerUuid: row.uuid, serviceType })))
      .onConflictDoNothing();
  }
}
