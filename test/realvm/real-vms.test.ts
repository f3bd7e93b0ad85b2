// Real VMs (QEMU/libvirt, the tryout image, dnsmasq DHCP): the agent suite, then the management-server suite, one
// after the other in one file — they share this machine's libvirtd, and the server reconciles what runs on its host
// (a VM it does not know, like the agent suite's, would be destroyed). Skipped, saying why, without root, sshd or
// the packages (.ci/run installs them).
import t from 'tap';
import { sshdUnavailable } from '../lib/sshd.js';
import { realVmUnavailable } from '../lib/realvm.js';
import { agentSuite } from './agent-suite.js';
import { routerSuite } from './router-suite.js';
import { serverSuite } from './server-suite.js';

// Booting under TCG on 2 shared cores can be slow when the whole suite runs: more than .taprc's 300 s per file.
t.setTimeout(900_000);

const unavailable = realVmUnavailable();
if (unavailable) {
  t.plan(0, `real VMs cannot run here: ${unavailable}`);
} else {
  // ZSTACK_REALVM_ONLY=router,server runs only those parts (while working on one: fewer VMs on shared cores).
  const only = process.env.ZSTACK_REALVM_ONLY?.split(',');
  const skip = (part: string) => (only && !only.includes(part) ? `ZSTACK_REALVM_ONLY=${only.join(',')}` : false);
  await t.test('a real VM through the kvm agent (libvirt backend)', { skip: skip('agent') }, agentSuite);
  await t.test('a virtual router as a namespace: DHCP from its dnsmasq, SNAT to the public side', { skip: skip('router') }, routerSuite);
  const noSshd = sshdUnavailable();
  await t.test('AddKVMHost (libvirt) → CreateVmInstance boots the tryout image with the allocated address', { skip: noSshd || skip('server') }, serverSuite);
}
