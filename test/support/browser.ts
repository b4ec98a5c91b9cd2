import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Download, type Page } from 'playwright-core';

/** Debian's Chromium (package `chromium`), which deploy/setup.sh installs. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Chromium's flags for this machine: as root it needs --no-sandbox; the network refuses all but
 * loopback, so Chromium must not try its own background connections (updates, sync, QUIC).
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where screenshots are kept as test output (test-output/ is not committed). */
export const SCREENSHOT_DIR = fileURLToPath(
  new URL('../../test-output/screenshots/', import.meta.url),
);

export interface TestBrowser {
  context: BrowserContext;
  /** Where downloads are saved; removed by `close()`. */
  downloadDir: string;
  /** URLs the pages asked for on any host but 127.0.0.1 (redirects too); each was refused. */
  offsiteRequests: string[];
  /** Closes Chromium and removes its profile and the downloads. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium (CHROMIUM_PATH with CHROMIUM_ARGS) with a new, empty profile, through
 * playwright-core. Its pages may reach only 127.0.0.1: a request to any other host is refused
 * and recorded in `offsiteRequests`.
 */
export async function launchChromium(): Promise<TestBrowser> {
  const profileDir = mkdtempSync(join(tmpdir(), 'crossdock-chromium-'));
  const downloadDir = mkdtempSync(join(tmpdir(), 'crossdock-downloads-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
  });
  const offsite = (url: URL | string) => {
    const { protocol, hostname } = new URL(url);
    return /^(https?|wss?):$/.test(protocol) && hostname !== '127.0.0.1';
  };
  const offsiteRequests: string[] = [];
  // The route refuses them; the event also sees redirects, which routes are not asked about.
  context.on('request', (request) => {
    if (offsite(request.url())) offsiteRequests.push(request.url());
  });
  await context.route(offsite, (route) => route.abort('blockedbyclient'));
  return {
    context,
    downloadDir,
    offsiteRequests,
    async close() {
      await context.close();
      rmSync(profileDir, { recursive: true, force: true });
      rmSync(downloadDir, { recursive: true, force: true });
    },
  };
}

let announced = false;

/**
 * Saves a full-page PNG of `page` as SCREENSHOT_DIR/`name`.png and returns its path; the first
 * call prints the directory.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  if (!announced) {
    announced = true;
    console.log(`screenshots: ${SCREENSHOT_DIR}`);
  }
  return path;
}

export interface DownloadedFile {
  /** The file name the browser chose (from Content-Disposition, else the URL). */
  name: string;
  bytes: Buffer;
}

/**
 * Runs `start` (a click on a link, say), waits for the download it begins, saves it into `dir`
 * under the name the browser chose and returns that name and the bytes. Throws if no download
 * begins within `timeoutMs` or it fails.
 */
export async function downloadOf(
  page: Page,
  dir: string,
  start: () => Promise<unknown>,
  timeoutMs = 15_000,
): Promise<DownloadedFile> {
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: timeoutMs }),
    start(),
  ]);
  return saveDownload(download, dir);
}

/**
 * Opens `url` in the address bar as a user would paste it, expecting a download (Content-
 * Disposition: attachment) rather than a page; returns it as `downloadOf` does.
 */
export async function downloadFromAddress(
  page: Page,
  dir: string,
  url: string,
): Promise<DownloadedFile> {
  return downloadOf(page, dir, () =>
    // Playwright fails the navigation itself when it turns into a download: that is the point.
    page.goto(url).catch((error: unknown) => {
      if (!/Download is starting|net::ERR_ABORTED/.test(String(error))) throw error;
    }),
  );
}

async function saveDownload(download: Download, dir: string): Promise<DownloadedFile> {
  const failure = await download.failure();
  if (failure !== null) throw new Error(`download of ${download.url()} failed: ${failure}`);
  const name = download.suggestedFilename();
  const path = join(mkdtempSync(join(dir, 'download-')), name);
  await download.saveAs(path);
  return { name, bytes: readFileSync(path) };
}

/**
 * The text a user sees on `page` (the body's innerText). Retried while the page is replaced by
 * a navigation (a reload, say) under the call.
 */
export async function visibleText(page: Page): Promise<string> {
  for (let tries = 0; ; tries += 1) {
    try {
      return await page.locator('body').innerText({ timeout: 5_000 });
    } catch (error) {
      if (tries >= 5 || !/context was destroyed|navigat/i.test(String(error))) throw error;
    }
  }
}
