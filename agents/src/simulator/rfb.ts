// A minimal RFB (VNC) server: enough of RFC 6143 for a console client to connect and see a solid-coloured screen.
// Handshake: version (3.8; 3.7 and 3.3 accepted) → security type 1 "None" → SecurityResult OK → ClientInit →
// ServerInit. Then FramebufferUpdateRequests get one raw rectangle in the client's pixel format.
import net, { type AddressInfo } from 'node:net';

export interface RfbOptions {
  host: string;
  /** Desktop name sent in ServerInit (the VM uuid). */
  name: string;
  width?: number;
  height?: number;
  /** Screen colour, 0-255 per channel. */
  colour?: [number, number, number];
}

export interface RfbServer {
  port: number;
  close(): Promise<void>;
}

interface PixelFormat {
  bitsPerPixel: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** 32 bpp, depth 24, little-endian true colour: what most clients expect. */
export const DEFAULT_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
};

export async function startRfbServer(opts: RfbOptions): Promise<RfbServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveRfb(socket, opts);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

type Stage = 'version' | 'security' | 'clientInit' | 'messages';

function serveRfb(socket: net.Socket, opts: RfbOptions): void {
  const width = opts.width ?? 640;
  const height = opts.height ?? 480;
  const colour = opts.colour ?? [0x1f, 0x6f, 0xb5];
  let buf: Buffer = Buffer.alloc(0);
  let stage: Stage = 'version';
  let minor = 8;
  let format = DEFAULT_PIXEL_FORMAT;
  let framesSent = 0;

  socket.setNoDelay(true);
  socket.on('error', () => {}); // a client vanishing is normal
  socket.write('RFB 003.008\n');
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    try {
      while (!socket.destroyed && step()) {
        /* consume every complete message */
      }
    } catch {
      socket.destroy();
    }
  });

  /** Handles one complete message if buffered; false = wait for more bytes. */
  function step(): boolean {
    switch (stage) {
      case 'version': {
        if (buf.length < 12) return false;
        const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(take(12).toString('latin1'));
        if (!m) throw new Error('bad ProtocolVersion');
        minor = Number(m[1]) > 3 ? 8 : Math.min(Number(m[2]), 8);
        if (minor < 7) {
          socket.write(u32(1)); // 3.3: the server decides; type 1 = None, no SecurityResult follows
          stage = 'clientInit';
        } else {
          socket.write(Buffer.from([1, 1])); // one security type offered: None
          stage = 'security';
        }
        return true;
      }
      case 'security': {
        if (buf.length < 1) return false;
        const choice = take(1)[0];
        if (choice !== 1) {
          const reason = Buffer.from('only security type None (1) is offered');
          if (minor >= 8) socket.write(Buffer.concat([u32(1), u32(reason.length), reason]));
          socket.end();
          return false;
        }
        if (minor >= 8) socket.write(u32(0)); // SecurityResult OK (3.7 sends none for type None)
        stage = 'clientInit';
        return true;
      }
      case 'clientInit': {
        if (buf.length < 1) return false;
        take(1); // shared-flag: every client shares the one pretend screen
        const name = Buffer.from(opts.name, 'utf8');
        const header = Buffer.alloc(4);
        header.writeUInt16BE(width, 0);
        header.writeUInt16BE(height, 2);
        socket.write(Buffer.concat([header, encodePixelFormat(format), u32(name.length), name]));
        stage = 'messages';
        return true;
      }
      case 'messages':
        return clientMessage();
    }
  }

  function clientMessage(): boolean {
    if (buf.length < 1) return false;
    switch (buf[0]) {
      case 0: // SetPixelFormat
        if (buf.length < 20) return false;
        format = decodePixelFormat(take(20).subarray(4));
        return true;
      case 2: {
        // SetEncodings: we only ever send Raw, which every client supports
        if (buf.length < 4) return false;
        const count = buf.readUInt16BE(2);
        if (buf.length < 4 + 4 * count) return false;
        take(4 + 4 * count);
        return true;
      }
      case 3: {
        // FramebufferUpdateRequest
        if (buf.length < 10) return false;
        const incremental = take(10)[1] !== 0;
        // Nothing ever changes on screen: answer full requests, hold incremental ones (as a real server does when
        // the screen is unchanged) so clients do not spin.
        if (!incremental || framesSent === 0) sendFrame();
        return true;
      }
      case 4: // KeyEvent
        if (buf.length < 8) return false;
        take(8);
        return true;
      case 5: // PointerEvent
        if (buf.length < 6) return false;
        take(6);
        return true;
      case 6: {
        // ClientCutText
        if (buf.length < 8) return false;
        const length = buf.readUInt32BE(4);
        if (buf.length < 8 + length) return false;
        take(8 + length);
        return true;
      }
      default:
        throw new Error(`unknown client message type ${buf[0]}`);
    }
  }

  function sendFrame(): void {
    const header = Buffer.alloc(16);
    header.writeUInt8(0, 0); // FramebufferUpdate
    header.writeUInt16BE(1, 2); // one rectangle
    header.writeUInt16BE(0, 4);
    header.writeUInt16BE(0, 6);
    header.writeUInt16BE(width, 8);
    header.writeUInt16BE(height, 10);
    header.writeInt32BE(0, 12); // Raw encoding
    const pixel = encodePixel(format, colour);
    socket.write(Buffer.concat([header, Buffer.alloc(width * height * pixel.length, pixel)]));
    framesSent++;
  }

  function take(n: number): Buffer {
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function encodePixelFormat(f: PixelFormat): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(f.bitsPerPixel, 0);
  b.writeUInt8(f.depth, 1);
  b.writeUInt8(f.bigEndian ? 1 : 0, 2);
  b.writeUInt8(f.trueColour ? 1 : 0, 3);
  b.writeUInt16BE(f.redMax, 4);
  b.writeUInt16BE(f.greenMax, 6);
  b.writeUInt16BE(f.blueMax, 8);
  b.writeUInt8(f.redShift, 10);
  b.writeUInt8(f.greenShift, 11);
  b.writeUInt8(f.blueShift, 12);
  return b;
}

function decodePixelFormat(b: Buffer): PixelFormat {
  const bitsPerPixel = b.readUInt8(0);
  if (![8, 16, 32].includes(bitsPerPixel)) throw new Error(`unsupported bits-per-pixel ${bitsPerPixel}`);
  return {
    bitsPerPixel,
    depth: b.readUInt8(1),
    bigEndian: b.readUInt8(2) !== 0,
    trueColour: b.readUInt8(3) !== 0,
    redMax: b.readUInt16BE(4),
    greenMax: b.readUInt16BE(6),
    blueMax: b.readUInt16BE(8),
    redShift: b.readUInt8(10),
    greenShift: b.readUInt8(11),
    blueShift: b.readUInt8(12),
  };
}

/** One pixel of `colour` in the client's format (colour-map formats get true-colour values; good enough). */
export function encodePixel(f: PixelFormat, [r, g, b]: [number, number, number]): Buffer {
  const scale = (v: number, max: number) => Math.round((v * max) / 255);
  const value = ((scale(r, f.redMax) << f.redShift) | (scale(g, f.greenMax) << f.greenShift) | (scale(b, f.blueMax) << f.blueShift)) >>> 0;
  const bytes = f.bitsPerPixel / 8;
  const out = Buffer.alloc(bytes);
  if (bytes === 1) out.writeUInt8(value & 0xff, 0);
  else if (bytes === 2) f.bigEndian ? out.writeUInt16BE(value & 0xffff, 0) : out.writeUInt16LE(value & 0xffff, 0);
  else f.bigEndian ? out.writeUInt32BE(value, 0) : out.writeUInt32LE(value, 0);
  return out;
}
