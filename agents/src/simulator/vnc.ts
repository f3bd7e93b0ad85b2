// Lazily opened VNC listeners of simulated VMs: a listener exists only between /vm/getvncport and the VM's
// stop/destroy/migration, so 10,000 simulated VMs cost no sockets until someone opens their console.
import { startRfbServer, type RfbServer } from './rfb.js';

export class VncConsoles {
  private readonly servers = new Map<string, Promise<RfbServer>>();
  private readonly ports = new Map<string, number>();

  constructor(readonly host = '127.0.0.1') {}

  /** Port of the VM's listener, opening it on first use. */
  async open(vmUuid: string): Promise<number> {
    let server = this.servers.get(vmUuid);
    if (!server) {
      server = startRfbServer({ host: this.host, name: vmUuid });
      this.servers.set(vmUuid, server);
      server.then(
        (s) => {
          if (this.servers.get(vmUuid) === server) this.ports.set(vmUuid, s.port);
        },
        () => {
          if (this.servers.get(vmUuid) === server) this.servers.delete(vmUuid);
        },
      );
    }
    return (await server).port;
  }

  /** Port if the listener is open (for inspection). */
  portOf(vmUuid: string): number | undefined {
    return this.ports.get(vmUuid);
  }

  close(vmUuid: string): void {
    const server = this.servers.get(vmUuid);
    if (!server) return;
    this.servers.delete(vmUuid);
    this.ports.delete(vmUuid);
    server.then(
      (s) => s.close(),
      () => {},
    );
  }

  async closeAll(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    this.ports.clear();
    await Promise.all(
      all.map((p) =>
        p.then(
          (s) => s.close(),
          () => {},
        ),
      ),
    );
  }
}
