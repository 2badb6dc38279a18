/**
 * The sign-in page in a real browser (headless Debian Chromium): framed by another origin it does not render
 * (CSP frame-ancestors 'none', X-Frame-Options DENY), and a form on another origin that posts a copied ticket
 * and CSRF token to it is refused without a code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { browserSkipReason, launchBrowser } from '../../support/browser.js';

const AZ_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const authorizePath = `/adfs/oauth2/v2.0/authorize?${new URLSearchParams({
  client_id: AZ_CLI,
  response_type: 'code',
  redirect_uri: 'http://localhost:8400',
  scope: 'openid',
  state: 's',
  code_challenge: 'x'.repeat(43),
  code_challenge_method: 'S256',
}).toString()}`;

void describe('the sign-in page in Chromium: framing and cross-site posts', { skip: browserSkipReason }, () => {
  let t: TestAuthority;
  let browser: Browser;
  let attacker: Server;
  let attackerPage = '';
  let attackerUrl: string;

  before(async () => {
    t = await startTestAuthority({});
    browser = await launchBrowser();
    // Another origin (a different port is a different origin) serving whatever the test puts there.
    attacker = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(attackerPage));
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    attackerUrl = `http://127.0.0.1:${String((attacker.address() as AddressInfo).port)}/`;
  });
  after(async () => {
    await browser?.close();
    await new Promise((r) => attacker?.close(r));
    await t?.close();
  });

  it('another origin framing the page gets no sign-in form', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    attackerPage = `<!doctype html><iframe id="f" src="${t.url}${authorizePath.replace(/&/g, '&amp;')}"></iframe>`;
    const refused = page
      .waitForEvent('console', { predicate: (m) => /frame-ancestors|X-Frame-Options|Refused to (display|frame)/i.test(m.text()), timeout: 15_000 })
      .catch(() => undefined);
    await page.goto(attackerUrl);
    await refused;
    const frame = page.frames().find((f) => f !== page.mainFrame());
    assert.ok(frame !== undefined);
    assert.equal(await frame.$('#username').catch(() => null), null, 'the framed page rendered its form');
    await context.close();
  });

  it('a form on another origin posting a copied ticket and token is refused (no cookie, foreign Origin): 403, no redirect', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${t.url}${authorizePath}`);
    const ticket = await page.getAttribute('input[name=ticket]', 'value');
    const csrf = await page.getAttribute('input[name=csrf_token]', 'value');
    attackerPage = `<!doctype html><form id="x" method="post" action="${t.url}/adfs/oauth2/v2.0/authorize">
<input name="ticket" value="${ticket ?? ''}"><input name="csrf_token" value="${csrf ?? ''}"><input name="username" value="a@b.c"><input name="password" value="p"><button id="go">go</button></form>`;
    const other = await context.newPage();
    await other.goto(attackerUrl);
    const [response] = await Promise.all([other.waitForNavigation(), other.click('#go')]);
    assert.equal(response?.status(), 403);
    assert.match(await other.innerText('body'), /AADSTS90023/);
    assert.ok(!other.url().startsWith('http://localhost:8400'));
    await context.close();
  });
});
