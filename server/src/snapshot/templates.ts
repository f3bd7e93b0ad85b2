// Images made from volumes and snapshots (upstream 1.1 ImageManagerImpl's CreateRootVolumeTemplateFrom*/
// CreateDataVolumeTemplateFromVolume), and data volumes made from snapshots and data volume templates. Each is a flow
// with rollback. A template: the image is recorded `Creating`; under the source volume's lock the host copies the
// volume (or snapshot) with its backing chain into one standalone file on the primary storage; outside the lock each
// backup storage fetches that copy with progress on the image (as AddImage); the copy then goes. Two templates of
// one volume wait for each other only for the copy on the host.
import { and, eq } from 'drizzle-orm';
import { argErr, err, notFound, opErr, stateErr, toApiError } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { newUuid } from '../core/ids.js';
import { hosts, imageBackupStorageRefs, images, primaryStorage, primaryStorageClusterRefs, volumes } from '../db/schema/index.js';
import { deleteImageBits } from '../image/index.js';
import type { BackupStorageRow } from '../storage/index.js';
import { notInStateErr, volumeInstallPathOf, type VmRow, type VolumeRow } from '../vm/index.js';
import type { SnapshotRow } from './inventory.js';
import type { VolumeSnapshotService } from './service.js';
import { uploadToBackupStorage, type UploadResult } from './upload.js';

export interface TemplateSpec {
  uuid?: string;
  name: string;
  description?: string;
  guestOsType?: string;
  platform?: string;
  system?: boolean;
  backupStorageUuids?: string[];
}

type Source = { volumeUuid: string; snapshotUuid?: string };

const normalizePlatform = (p?: string) => (p === 'Paravirtualization' ? 'Other' : p === 'WindowsVirtio' ? 'Windows' : (p ?? 'Linux'));

/** Where an image goes on a backup storage (image domain's layout). */
const imageInstallPath = (storagePath: string, mediaType: string, uuid: string) =>
  `${storagePath === '/' ? '' : storagePath.replace(/\/$/, '')}/${mediaType === 'DataVolumeTemplate' ? 'dataVolumeTemplates' : 'rootVolumeTemplates'}/${uuid}/${uuid}.qcow2`;

export class Templates {
  constructor(private readonly svc: VolumeSnapshotService) {}

  private get app() {
    return this.svc.app;
  }

  /** A volume a template or copy can be made of now: Ready on primary storage; its VM (if any) Stopped. */
  checkVolumeSource(v: VolumeRow | undefined, uuid: string, field: string, vm: VmRow | undefined, op: string, rootOnly = false): VolumeRow {
    if (!v) throw notFound('VolumeVO', uuid, field);
    if (rootOnly && v.type !== 'Root') throw argErr(`field[${field}]: volume[uuid:${uuid}] is a ${v.type} volume, not a root volume`);
    if (v.status !== 'Ready' || !v.primaryStorageUuid || !v.installPath) {
      throw stateErr('SYS.1010', `volume[uuid:${uuid}] is ${v.status}; only Ready volumes on primary storage can be copied`);
    }
    if (vm && vm.state !== 'Stopped') throw notInStateErr(vm.state, op, ['Stopped']);
    return v;
  }

  checkSnapshotSource(s: SnapshotRow): void {
    if (s.status !== 'Ready' || !s.primaryStorageInstallPath) throw stateErr('SYS.1010', `snapshot[uuid:${s.uuid}] is ${s.status}, not Ready`);
  }

  /** What a template's checks need before the 202: the source, and the backup storage it goes to. */
  async checkTemplate(source: Source, field: string, spec: TemplateSpec, op: string, rootOnly: boolean): Promise<BackupStorageRow[]> {
    let psUuid: string;
    if (source.snapshotUuid) {
      const s = await this.svc.require(source.snapshotUuid, field);
      this.checkSnapshotSource(s);
      psUuid = s.primaryStorageUuid;
    } else {
      const v = await this.app.use('volumes').get(source.volumeUuid);
      const vm = v?.vmInstanceUuid ? await this.app.use('vms').get(v.vmInstanceUuid) : undefined;
      psUuid = this.checkVolumeSource(v, source.volumeUuid, field, vm, op, rootOnly).primaryStorageUuid!;
    }
    return this.svc.targetBackupStorage(psUuid, spec.backupStorageUuids, 'backupStorageUuids');
  }

  async createTemplate(source: Source, field: string, spec: TemplateSpec, mediaType: 'RootVolumeTemplate' | 'DataVolumeTemplate', op: string): Promise<string> {
    const rootOnly = op === 'CreateRootVolumeTemplateFromRootVolume';
    const targets = await this.checkTemplate(source, field, spec, op, rootOnly);
    const db = this.app.db;
    const uuid = spec.uuid ?? newUuid();
    const backup = this.app.use('backupStorage');
    const d: { hostUuid?: string; psUuid?: string; copyPath?: string; copySize: number; virtualSize: number; results: UploadResult[] } = {
      copySize: 0,
      virtualSize: 0,
      results: [],
    };
    await runFlow(
      'create-template',
      [
        {
          name: 'record-image',
          run: async () => {
            await db.transaction(async (tx) => {
              await tx.insert(images).values({
                uuid,
                name: spec.name,
                description: spec.description ?? null,
                status: 'Creating',
                progress: '0%',
                url: source.snapshotUuid ? `volumeSnapshot://${source.snapshotUuid}` : `volume://${source.volumeUuid}`,
                mediaType,
                format: 'qcow2',
                guestOsType: spec.guestOsType ?? null,
                platform: normalizePlatform(spec.platform),
                architecture: 'x86_64',
                system: spec.system ?? false,
              });
              await tx.insert(imageBackupStorageRefs).values(
                targets.map((bs) => ({
                  imageUuid: uuid,
                  backupStorageUuid: bs.uuid,
                  status: 'Creating',
                  installPath: imageInstallPath(backup.storagePathOf(bs), mediaType, uuid),
                })),
              );
            });
          },
          rollback: async () => void (await db.delete(images).where(eq(images.uuid, uuid))),
        },
        {
          name: 'copy-on-host',
          // The copy under the volume's lock: a consistent content, no snapshot deleted or VM started meanwhile.
          run: () =>
            this.svc.withVolume(source.volumeUuid, async (v, vm) => {
              let sourcePath: string;
              if (source.snapshotUuid) {
                const s = await this.svc.require(source.snapshotUuid, field);
                this.checkSnapshotSource(s);
                sourcePath = s.primaryStorageInstallPath!;
                d.psUuid = s.primaryStorageUuid;
                d.virtualSize = v?.size ?? s.size;
              } else {
                const vol = this.checkVolumeSource(v, source.volumeUuid, field, vm, op, rootOnly);
                sourcePath = vol.installPath!;
                d.psUuid = vol.primaryStorageUuid!;
                d.virtualSize = vol.size;
              }
              const [ps] = await db.select({ url: primaryStorage.url }).from(primaryStorage).where(eq(primaryStorage.uuid, d.psUuid));
              d.hostUuid = await this.svc.hostFor(d.psUuid, vm);
              d.copyPath = `${ps.url.replace(/\/$/, '')}/templateTemporary/${uuid}.qcow2`;
              const r = await this.app
                .use('hosts')
                .call(d.hostUuid, '/primarystorage/volume/flatten', { installPath: sourcePath, targetInstallPath: d.copyPath, volumeSize: d.virtualSize });
              d.copySize = r.size ?? d.virtualSize;
            }),
          rollback: async () => {
            if (d.hostUuid && d.copyPath) await this.svc.deleteFile(d.hostUuid, d.psUuid!, `${uuid}-copy`, d.copyPath);
          },
        },
        {
          name: 'upload',
          run: async () => {
            const refs = await db.select().from(imageBackupStorageRefs).where(eq(imageBackupStorageRefs.imageUuid, uuid));
            d.results = await uploadToBackupStorage(this.app, {
              key: uuid,
              hostUuid: d.hostUuid!,
              sourcePath: d.copyPath!,
              size: d.copySize,
              targets: targets.map((bs) => ({ bs, installPath: refs.find((r) => r.backupStorageUuid === bs.uuid)!.installPath! })),
              onProgress: async (p) =>
                void (await db
                  .update(images)
                  .set({ progress: `${p}%` })
                  .where(and(eq(images.uuid, uuid), eq(images.status, 'Creating')))),
            });
            const ok = d.results.filter((r) => r.reply);
            if (ok.length === 0) {
              const first = toApiError(d.results[0]?.error).error;
              throw opErr(`failed to upload image[uuid:${uuid}, name:${spec.name}] to backup storage: ${first.details ?? first.description}`, first);
            }
          },
          rollback: async () => {
            for (const r of d.results.filter((x) => x.reply)) {
              await deleteImageBits(this.app, { imageUuid: uuid, backupStorageUuid: r.bs.uuid, installPath: r.installPath }).catch(() => undefined);
            }
          },
        },
        {
          name: 'ready',
          run: async () => {
            const ok = d.results.filter((r) => r.reply);
            await db.transaction(async (tx) => {
              for (const r of d.results) {
                const where = and(eq(imageBackupStorageRefs.imageUuid, uuid), eq(imageBackupStorageRefs.backupStorageUuid, r.bs.uuid));
                if (r.reply) await tx.update(imageBackupStorageRefs).set({ status: 'Ready', lastOpDate: new Date() }).where(where);
                else await tx.delete(imageBackupStorageRefs).where(where);
              }
              await tx
                .update(images)
                .set({
                  status: 'Ready',
                  progress: null,
                  size: d.virtualSize,
                  actualSize: ok[0].reply!.size ?? d.copySize,
                  md5Sum: ok[0].reply!.md5Sum ?? null,
                  lastOpDate: new Date(),
                })
                .where(eq(images.uuid, uuid));
            });
          },
        },
      ],
      d,
    );
    for (const r of d.results.filter((x) => x.error)) {
      console.warn(`[snapshot] template ${uuid} could not go to backup storage ${r.bs.uuid}: ${toApiError(r.error).message}`);
    }
    await this.svc.deleteFile(d.hostUuid!, d.psUuid!, `${uuid}-copy`, d.copyPath!);
    return uuid;
  }

  // ---------------------------------------------------------------------------------------------------- data volumes

  async checkFromSnapshot(snapshotUuid: string, psUuid?: string): Promise<SnapshotRow> {
    const s = await this.svc.require(snapshotUuid, 'volumeSnapshotUuid');
    this.checkSnapshotSource(s);
    if (psUuid && psUuid !== s.primaryStorageUuid) {
      throw argErr(`field[primaryStorageUuid]: snapshot[uuid:${s.uuid}] is on primary storage[uuid:${s.primaryStorageUuid}]; a volume made from it goes there`);
    }
    return s;
  }

  async dataVolumeFromSnapshot(
    snapshotUuid: string,
    spec: { uuid?: string; name: string; description?: string; primaryStorageUuid?: string },
  ): Promise<string> {
    const s = await this.checkFromSnapshot(snapshotUuid, spec.primaryStorageUuid);
    const [ps] = await this.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, s.primaryStorageUuid));
    const source = await this.app.use('volumes').get(s.volumeUuid);
    const size = source?.size ?? s.size;
    const uuid = spec.uuid ?? newUuid();
    const installPath = await volumeInstallPathOf(this.app, ps, 'dataVolumes', uuid);
    return this.makeVolume(uuid, spec, ps.uuid, size, null, async () => {
      // The copy under the source volume's lock: the snapshot cannot be deleted meanwhile.
      return this.svc.withVolume(s.volumeUuid, async (_v, vm) => {
        const fresh = await this.checkFromSnapshot(snapshotUuid, spec.primaryStorageUuid);
        const hostUuid = await this.svc.hostFor(ps.uuid, vm);
        await this.app.use('hosts').call(hostUuid, '/primarystorage/volume/flatten', {
          installPath: fresh.primaryStorageInstallPath!,
          targetInstallPath: installPath,
          volumeSize: size,
        });
        return { hostUuid, installPath };
      });
    });
  }

  async checkFromTemplate(imageUuid: string, psUuid: string, hostUuid?: string) {
    const [image] = await this.app.db.select().from(images).where(eq(images.uuid, imageUuid));
    if (!image) throw notFound('ImageVO', imageUuid, 'imageUuid');
    if (image.mediaType !== 'DataVolumeTemplate') throw argErr(`field[imageUuid]: image[uuid:${imageUuid}] is a ${image.mediaType}, not a DataVolumeTemplate`);
    if (image.status !== 'Ready' || image.state !== 'Enabled') throw stateErr('SYS.1010', `image[uuid:${imageUuid}] is ${image.state}, ${image.status}`);
    const refs = await this.app.db.select().from(imageBackupStorageRefs).where(eq(imageBackupStorageRefs.imageUuid, imageUuid));
    const ref = refs.find((r) => r.status === 'Ready' && r.installPath);
    if (!ref) throw stateErr('SYS.1010', `image[uuid:${imageUuid}] is on no backup storage`);
    const [ps] = await this.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, psUuid));
    if (!ps) throw notFound('PrimaryStorageVO', psUuid, 'primaryStorageUuid');
    if (ps.state !== 'Enabled' || ps.status !== 'Connected') throw stateErr('SYS.1010', `primary storage[uuid:${ps.uuid}] is ${ps.state}, ${ps.status}`);
    if (hostUuid) {
      const [h] = await this.app.db
        .select({ uuid: hosts.uuid, status: hosts.status })
        .from(hosts)
        .innerJoin(primaryStorageClusterRefs, eq(primaryStorageClusterRefs.clusterUuid, hosts.clusterUuid))
        .where(and(eq(hosts.uuid, hostUuid), eq(primaryStorageClusterRefs.primaryStorageUuid, psUuid)));
      if (!h) throw argErr(`field[hostUuid]: host[uuid:${hostUuid}] does not exist or cannot reach primary storage[uuid:${psUuid}]`);
      if (h.status !== 'Connected') throw err('HOST.1010', `host[uuid:${hostUuid}] is ${h.status}`);
    }
    return { image, ref, ps };
  }

  async dataVolumeFromTemplate(imageUuid: string, spec: { uuid?: string; name: string; description?: string; primaryStorageUuid: string; hostUuid?: string }) {
    const { image, ref, ps } = await this.checkFromTemplate(imageUuid, spec.primaryStorageUuid, spec.hostUuid);
    const uuid = spec.uuid ?? newUuid();
    const installPath = await volumeInstallPathOf(this.app, ps, 'dataVolumes', uuid);
    const size = image.size || image.actualSize;
    return this.makeVolume(uuid, spec, ps.uuid, size, image.uuid, async () => {
      const hostUuid = spec.hostUuid ?? (await this.svc.hostFor(ps.uuid));
      await this.app.use('primaryStorage').createVolume(hostUuid, {
        installPath,
        size,
        volumeUuid: uuid,
        primaryStorageUuid: ps.uuid,
        mountPath: ps.url,
        imageInstallPath: `${ps.url.replace(/\/$/, '')}/imagecache/template/${image.uuid}/${image.uuid}.qcow2`,
        backupStorageUuid: ref.backupStorageUuid,
        backupStorageInstallPath: ref.installPath!,
      });
      return { hostUuid, installPath };
    });
  }

  /** The flow shared by both: reserve the bytes, record the volume Creating, make its file, mark it Ready. */
  private async makeVolume(
    uuid: string,
    spec: { name: string; description?: string },
    psUuid: string,
    size: number,
    rootImageUuid: string | null,
    makeFile: () => Promise<{ hostUuid: string; installPath: string }>,
  ): Promise<string> {
    const db = this.app.db;
    const d: { file?: { hostUuid: string; installPath: string } } = {};
    await runFlow(
      'create-data-volume-from-copy',
      [
        {
          name: 'reserve-and-record',
          run: async () => {
            await db.transaction(async (tx) => {
              if (!(await this.app.use('primaryStorage').reserve(tx, psUuid, size))) {
                throw err('PS.1000', `primary storage[uuid:${psUuid}] has not ${size} bytes free for volume[uuid:${uuid}]`);
              }
              await tx.insert(volumes).values({
                uuid,
                name: spec.name,
                description: spec.description ?? null,
                primaryStorageUuid: psUuid,
                rootImageUuid,
                type: 'Data',
                format: 'qcow2',
                size,
                status: 'Creating',
              });
            });
          },
          rollback: async () => {
            await db.transaction(async (tx) => {
              await tx.delete(volumes).where(eq(volumes.uuid, uuid));
              await this.app.use('primaryStorage').release(tx, psUuid, size);
            });
          },
        },
        {
          name: 'make-file',
          run: async () => void (d.file = await makeFile()),
          rollback: async () => {
            if (d.file) await this.svc.deleteFile(d.file.hostUuid, psUuid, uuid, d.file.installPath);
          },
        },
        {
          name: 'ready',
          run: async () =>
            void (await db
              .update(volumes)
              .set({ status: 'Ready', installPath: d.file!.installPath, actualSize: size, lastOpDate: new Date() })
              .where(eq(volumes.uuid, uuid))),
        },
      ],
      d,
    );
    return uuid;
  }
}
