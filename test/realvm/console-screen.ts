// A real VM's screen in the browser console: the noVNC page (GET /zstack/console) in headless Chromium, through
// the console proxy to QEMU's VNC server. The canvas must show text (the login prompt on tty1): many pixels away
// from the background colour, not one flat colour (what a blank or simulated screen is). Screenshot saved.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Test } from 'tap';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const chromiumMissing = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

interface Screen {
  width: number;
  height: number;
  /** Distinct colours on the canvas. */
  colours: number;
  /** Share of pixels differing from the most common colour (the background). */
  inked: number;
}

/** Opens the console page, waits for the VM's text on the canvas, screenshots it to `file`. */
export async function checkConsoleScreen(t: Test, pageUrl: string, file: string): Promise<void> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
  try {
    const page = await browser.newPage({ viewport: { width: 800, height: 500 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    await page.goto(pageUrl);
    await page.waitForFunction(() => (window as unknown as { zstackConsole?: { state: string } }).zstackConsole?.state !== 'connecting', undefined, {
      timeout: 30_000,
    });
    const state = await page.evaluate(() => (window as unknown as { zstackConsole: { state: string; error: string | null } }).zstackConsole);
    t.equal(state.state, 'connected', `noVNC connected to the real VM${state.error ? `: ${state.error}` : ''}`);
    // Text on a plain background: some ink (a login prompt is ~1% of a 720x400 text screen), several colours.
    const measure = () =>
      page.evaluate((): Screen | undefined => {
        const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
        if (!canvas || canvas.width < 320) return undefined;
        const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        const counts = new Map<number, number>();
        for (let i = 0; i < data.length; i += 4) {
          const c = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
          counts.set(c, (counts.get(c) ?? 0) + 1);
        }
        const pixels = data.length / 4;
        const background = Math.max(...counts.values());
        return { width: canvas.width, height: canvas.height, colours: counts.size, inked: (pixels - background) / pixels };
      });
    await page.waitForFunction(
      () => {
        const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
        if (!canvas || canvas.width < 320) return false;
        const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) inked++;
        return inked / (data.length / 4) > 0.002;
      },
      undefined,
      { timeout: 30_000, polling: 500 },
    );
    const screen = (await measure())!;
    t.ok(
      screen.colours >= 2 && screen.inked > 0.002,
      `the canvas shows text: ${screen.width}x${screen.height}, ${screen.colours} colours, ${(screen.inked * 100).toFixed(1)}% inked`,
    );
    t.same(problems, [], 'no script errors');
    mkdirSync(dirname(file), { recursive: true });
    await page.screenshot({ path: file });
    t.comment(`screenshot: ${file}`);
  } finally {
    await browser.close();
  }
}
