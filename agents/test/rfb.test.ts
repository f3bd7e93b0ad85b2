// Simulated VM consoles: an RFB 3.8 handshake over a real TCP socket, lazily opened and closed with the VM.
import net from 'node:net';
import t from 'tap';
import { call, start, startCmd } from './helpers.js';

/** Reads exactly n bytes from a socket (buffering what arrives early). */
function reader(socket: net.Socket) {
  let buf = Buffer.alloc(0);
  let waiting: { n: number; resolve: (b: Buffer) => void } | undefined;
  const flush = () => {
    if (waiting && buf.length >= waiting.n) {
      const out = buf.subarray(0, waiting.n);
      buf = buf.subarray(waiting.n);
      const w = waiting;
      waiting = undefined;
      w.resolve(out);
    }
  };
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    flush();
  });
  return (n: number) =>
    new Promise<Buffer>((resolve) => {
      waiting = { n, resolve };
      flush();
    });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

t.test('RFB 3.8 handshake up to ServerInit and a framebuffer update', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const h = { target: 'h1' };
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  await call(agent, '/vm/start', startCmd('vm-console'), h);
  t.equal(agent.simulator?.hosts?.vnc.portOf('vm-console'), undefined, 'no listener before getvncport');

  const vnc = (await call(agent, '/vm/getvncport', { vmUuid: 'vm-console' }, h)).body;
  t.equal(vnc.success, true);
  t.equal(vnc.host, '127.0.0.1');
  t.ok(vnc.port > 0);
  t.equal((await call(agent, '/vm/getvncport', { vmUuid: 'vm-console' }, h)).body.port, vnc.port, 'same listener on the second call');

  const socket = await connect(vnc.port);
  t.teardown(() => socket.destroy());
  const read = reader(socket);
  t.equal((await read(12)).toString('latin1'), 'RFB 003.008\n');
  socket.write('RFB 003.008\n');
  const types = await read(2);
  t.same([...types], [1, 1], 'one security type: None');
  socket.write(Buffer.from([1]));
  t.equal((await read(4)).readUInt32BE(0), 0, 'SecurityResult OK');
  socket.write(Buffer.from([1])); // ClientInit, shared
  const init = await read(24);
  t.equal(init.readUInt16BE(0), 640);
  t.equal(init.readUInt16BE(2), 480);
  t.equal(init.readUInt8(4), 32, '32 bits per pixel');
  t.equal(init.readUInt8(7), 1, 'true colour');
  const name = await read(init.readUInt32BE(20));
  t.equal(name.toString('utf8'), 'vm-console', 'desktop name = VM uuid');

  // SetEncodings (raw) then a full FramebufferUpdateRequest.
  socket.write(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]));
  socket.write(Buffer.from([3, 0, 0, 0, 0, 0, 2, 128, 1, 224]));
  const update = await read(16);
  t.equal(update.readUInt8(0), 0, 'FramebufferUpdate');
  t.equal(update.readUInt16BE(2), 1, 'one rectangle');
  t.same([update.readUInt16BE(8), update.readUInt16BE(10), update.readInt32BE(12)], [640, 480, 0], 'full screen, raw');
  const pixels = await read(640 * 480 * 4);
  t.equal(pixels.readUInt32LE(0), pixels.readUInt32LE(pixels.length - 4), 'solid colour');

  const vms = (await call(agent, '/simulator/vms', { hostUuid: 'h1' })).body.vms;
  t.equal(vms[0].vncPort, vnc.port);

  // Stopping the VM closes its console.
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await call(agent, '/vm/stop', { uuid: 'vm-console' }, h);
  await closed;
  await new Promise((r) => setTimeout(r, 20));
  await t.rejects(connect(vnc.port), { code: 'ECONNREFUSED' }, 'listener closed with the VM');
  t.equal(agent.simulator?.hosts?.vnc.portOf('vm-console'), undefined);

  const stopped = await call(agent, '/vm/getvncport', { vmUuid: 'vm-console' }, h);
  t.equal(stopped.body.success, false, 'a stopped VM has no console');
});

t.test('older clients (3.3) and a 16 bpp pixel format', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/vm/start', startCmd('vm2'), { target: 'h1' });
  const { port } = (await call(agent, '/vm/getvncport', { vmUuid: 'vm2' }, { target: 'h1' })).body;
  const socket = await connect(port);
  t.teardown(() => socket.destroy());
  const read = reader(socket);
  await read(12);
  socket.write('RFB 003.003\n');
  t.equal((await read(4)).readUInt32BE(0), 1, '3.3: the server names security type None');
  socket.write(Buffer.from([0]));
  const init = await read(24);
  await read(init.readUInt32BE(20));
  const pf = Buffer.from([0, 0, 0, 0, 16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0]);
  socket.write(pf);
  socket.write(Buffer.from([3, 1, 0, 0, 0, 0, 0, 10, 0, 10])); // incremental, but no frame sent yet → answered
  const update = await read(16);
  t.equal(update.readUInt16BE(8), 640);
  const pixels = await read(640 * 480 * 2);
  t.equal(pixels.length, 640 * 480 * 2, '2 bytes per pixel after SetPixelFormat');

  // Migration closes the console as well.
  await call(agent, '/host/connect', { hostUuid: 'h2' });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await call(agent, '/vm/migrate', { vmUuid: 'vm2', destHostIp: 'x', destHostUuid: 'h2' }, { target: 'h1' });
  await closed;
  t.pass('console closed on migration');
});
