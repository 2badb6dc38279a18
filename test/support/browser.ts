/**
 * Headless Chromium for tests: Debian's `chromium` package driven by playwright-core (no browser download).
 * Suites that need it skip with {@link browserSkipReason} when it is not installed.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why browser suites skip here, or false when Chromium is installed. */
export const browserSkipReason: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} missing (apt-get install chromium)`;

/** Headless Chromium that talks to loopback directly (never a proxy from the environment). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--no-proxy-server', '--disable-gpu'] });
}

/**
 * Signs in on the authority's sign-in page at `url` (the authorize URL a client opened) and waits until the
 * browser reached `redirectOrigin` (the client's loopback listener). The dev server's certificate is from its
 * own CA, which this throwaway profile does not trust.
 */
export async function signInWithBrowser(browser: Browser, url: string, user: { name: string; password: string }, redirectOrigin: string): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(url);
  await page.fill('#username', user.name);
  await page.fill('#password', user.password);
  try {
    await Promise.all([page.waitForURL((u) => u.origin === redirectOrigin, { timeout: 30_000 }), page.click('#submit')]);
  } catch (err) {
    throw new Error(`sign-in did not reach ${redirectOrigin}: ${(err as Error).message}\npage: ${await page.innerText('body').catch(() => '?')}`, {
      cause: err,
    });
  }
  return page;
}

/** Enters `userCode` and signs in on the device-login page at `url`; returns the page's final message. */
export async function approveDeviceCode(browser: Browser, url: string, userCode: string, user: { name: string; password: string }): Promise<string> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  try {
    await page.goto(url);
    await page.fill('#user_code', userCode);
    await page.fill('#username', user.name);
    await page.fill('#password', user.password);
    await Promise.all([page.waitForLoadState('load'), page.click('#submit')]);
    await page.waitForSelector('#message, #error', { timeout: 30_000 });
    return await page.innerText('main');
  } finally {
    await context.close();
  }
}
