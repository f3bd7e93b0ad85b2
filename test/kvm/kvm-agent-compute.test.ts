// The real kvm agent's side of issue #19 without a hypervisor: KvmRunShell's runner (exit code, both outputs, the
// 64 KiB cut, the deadline) and the domain XML every VM gets (a CD-ROM drive even without an ISO, so attaching one
// is a media change; boot devices in the order given).
import t from 'tap';
import { OUTPUT_LIMIT, runHostShell } from '../../agents/src/kvm/shell.js';
import { domainXml } from '../../agents/src/kvm/domain-xml.js';

t.test('runHostShell: exit code and outputs, output cut, aborted by the deadline', async (t) => {
  const r = await runHostShell('echo out; echo err >&2; exit 3', new AbortController().signal);
  t.same(r, { returnCode: 3, stdout: 'out\n', stderr: 'err\n' });
  const big = await runHostShell(`head -c ${OUTPUT_LIMIT * 2} /dev/zero | tr '\\0' x`, new AbortController().signal);
  t.equal(big.stdout.length, OUTPUT_LIMIT, 'stdout cut at the limit');
  t.equal(big.returnCode, 0);
  const ac = new AbortController();
  const slow = runHostShell('sleep 30', ac.signal);
  ac.abort(new Error('deadline exceeded'));
  await t.rejects(slow, /deadline exceeded/);
});

t.test('domain XML: a CD-ROM drive always, the ISO and boot order when given', async (t) => {
  const base = {
    vmInstanceUuid: '0123456789abcdef0123456789abcdef',
    memory: 64 * 2 ** 20,
    cpuNum: 1,
    rootVolume: { installPath: '/ps/rootVolumes/r.qcow2', deviceId: 0, deviceType: 'file', volumeUuid: 'r', useVirtio: true },
  } as const;
  const opts = { domainType: 'qemu' as const, vncListen: '127.0.0.1' };
  const plain = domainXml(base as never, opts);
  t.match(plain, /<disk type='file' device='cdrom'><driver name='qemu' type='raw'\/><target dev='hdc' bus='ide'\/><readonly\/><\/disk>/, 'an empty drive');
  t.match(plain, /<os>.*<boot dev='hd'\/><\/os>/s);
  const withIso = domainXml({ ...base, bootDev: ['cdrom', 'hd'], bootIso: { path: '/ps/imagecache/iso/i/i.iso', imageUuid: 'i' } } as never, opts);
  t.match(withIso, /device='cdrom'><driver name='qemu' type='raw'\/><source file='\/ps\/imagecache\/iso\/i\/i.iso'\/><target dev='hdc'/);
  t.match(withIso, /<boot dev='cdrom'\/><boot dev='hd'\/>/, 'boot devices in order');
});
