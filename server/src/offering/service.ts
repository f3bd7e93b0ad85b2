// The offering domain's service: what other domains read of offerings.
import { and, asc, desc, eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { diskOfferings, instanceOfferings } from '../db/schema/index.js';
import type { DiskOfferingRow, InstanceOfferingRow } from './inventory.js';

/** Upstream's allocator when an offering names none. */
export const DEFAULT_ALLOCATOR_STRATEGY = 'LeastVmPreferredHostAllocatorStrategy';

export class OfferingService {
  constructor(private app: DomainContext) {}

  async instanceOffering(uuid: string): Promise<InstanceOfferingRow | undefined> {
    const [o] = await this.app.db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, uuid));
    return o;
  }

  async diskOffering(uuid: string): Promise<DiskOfferingRow | undefined> {
    const [o] = await this.app.db.select().from(diskOfferings).where(eq(diskOfferings.uuid, uuid));
    return o;
  }

  /** The zone's virtual router offering marked default, else its oldest one. */
  async defaultVirtualRouterOffering(zoneUuid: string): Promise<InstanceOfferingRow | undefined> {
    const [o] = await this.app.db
      .select()
      .from(instanceOfferings)
      .where(and(eq(instanceOfferings.type, 'VirtualRouter'), eq(instanceOfferings.zoneUuid, zoneUuid), eq(instanceOfferings.state, 'Enabled')))
      .orderBy(desc(instanceOfferings.isDefault), asc(instanceOfferings.createDate))
      .limit(1);
    return o;
  }
}
