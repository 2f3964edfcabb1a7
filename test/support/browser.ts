import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** The Debian Chromium the browser tests drive (never a downloaded one). */
export const CHROMIUM = '/usr/bin/chromium';

/** True when Chromium is installed; browser suites are skipped (and say why) without it. */
export const hasChromium = fs.existsSync(CHROMIUM);

/** The suite name, saying why it is skipped when Chromium is missing. */
export const browserSuiteName = (name: string) => (hasChromium ? name : `${name} (skipped: ${CHROMIUM} is not installed)`);

/**
 * Launches headless Chromium with nothing running in the background (no updates, sync or network
 * chatter); `extraArgs` adds switches such as `--host-resolver-rules`.
 */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
  });
}

/**
 * A page in a fresh browser context for an application that is not running: requests to its
 * `redirectUri` are answered here with a "Back at the application" page, and `callback()` is the
 * URL it was called with, for openid-client to redeem.
 */
export async function appPage(browser: Browser, redirectUri: string): Promise<{ context: BrowserContext; page: Page; callback: () => URL | undefined }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  let callback: URL | undefined;
  await page.route(`${redirectUri}**`, async (route) => {
    callback = new URL(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>Back at the application</h1>' });
  });
  return { context, page, callback: () => callback };
}
