// Size and free space of the file system holding a path.
import { statfs } from 'node:fs/promises';

export interface Capacity {
  totalCapacity: number;
  availableCapacity: number;
}

export async function capacityOf(path: string): Promise<Capacity> {
  const s = await statfs(path);
  return { totalCapacity: s.blocks * s.bsize, availableCapacity: s.bavail * s.bsize };
}
