// libvirt's daemons on a host without systemd (containers, CI machines): virtlogd first (without it domains fail
// to start), then libvirtd, both daemonised by themselves. With systemd, its units are started instead.
import { existsSync } from 'node:fs';
import { sleep } from '../lib/abort.js';
import { AgentError } from '../lib/errors.js';
import { run } from '../lib/exec.js';

export interface EnsureLibvirtdOptions {
  virsh?: string;
  uri?: string;
  /** How long libvirtd may take to answer once started, ms (its first call probes capabilities: ~9 s). */
  waitMs?: number;
}

/** 'running' when libvirtd already answered, 'started' when this call started it; throws saying why not. */
export async function ensureLibvirtd(signal: AbortSignal, o: EnsureLibvirtdOptions = {}): Promise<'running' | 'started'> {
  const virsh = o.virsh ?? 'virsh';
  const uri = o.uri ?? 'qemu:///system';
  const answers = () =>
    run(virsh, ['-c', uri, 'uri'], signal).then(
      () => true,
      () => false,
    );
  if (await answers()) return 'running';
  if (existsSync('/run/systemd/system')) {
    await run('systemctl', ['start', 'virtlogd.socket', 'libvirtd'], signal).catch(() => undefined);
  } else {
    // Each refuses to start a second copy (pid file): an error here just means it runs already.
    for (const daemon of ['virtlogd', 'libvirtd']) {
      await run(daemon, ['-d'], signal).catch((err: Error) => {
        if (/not found on PATH/.test(err.message)) throw new AgentError(`${daemon} is not installed (apt-get install libvirt-daemon-system)`);
      });
    }
  }
  const end = Date.now() + (o.waitMs ?? 60_000);
  while (!(await answers())) {
    if (Date.now() > end) throw new AgentError(`libvirtd did not answer on ${uri} within ${o.waitMs ?? 60_000} ms after being started`);
    await sleep(200, signal);
  }
  return 'started';
}
