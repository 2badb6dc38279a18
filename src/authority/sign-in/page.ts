/**
 * The sign-in pages' HTML: server-rendered forms, no script. Every value is HTML-escaped; the one inline
 * stylesheet is allowed by its hash, so the Content-Security-Policy allows nothing else at all.
 */
import { createHash } from 'node:crypto';

const STYLE = `body{font-family:system-ui,sans-serif;margin:0;background:#f3f2f1;color:#1b1b1b}
main{max-width:26rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:4px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:1.5rem;margin:0 0 1rem}label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input{box-sizing:border-box;width:100%;padding:.5rem;font-size:1rem;border:1px solid #8a8886}
button{margin-top:1.25rem;padding:.5rem 1.5rem;font-size:1rem;border:0;background:#0067b8;color:#fff;cursor:pointer}
button.secondary{background:#e1dfdd;color:#1b1b1b;margin-left:.5rem}.error{color:#a4262c;border-left:4px solid #a4262c;padding:.5rem;background:#fde7e9}
.app{color:#605e5c}`;

const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`;

/** The security headers of every sign-in page: no framing, no script, forms post only to `formTargets`. */
export function pageHeaders(formTargets: readonly string[] = []): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': [
      "default-src 'none'",
      `style-src ${STYLE_HASH}`,
      // Chromium applies form-action to the redirect after the post too: the client's redirect URI is a target.
      `form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    // Not no-referrer: with it Chromium sends `Origin: null` on the page's own post, which the CSRF check refuses.
    'referrer-policy': 'same-origin',
    'cache-control': 'no-store, no-cache',
    pragma: 'no-cache',
    'cross-origin-opener-policy': 'same-origin',
  };
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${String(c.charCodeAt(0))};`);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

function errorBlock(error: string | undefined): string {
  return error === undefined ? '' : `<p class="error" role="alert" id="error">${escapeHtml(error)}</p>`;
}

function hidden(fields: Readonly<Record<string, string>>): string {
  return Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
}

/** The authorize flow's page: user name and password for `appName`. */
export function signInPage(input: {
  action: string;
  appName: string;
  hidden: Readonly<Record<string, string>>;
  loginHint?: string | undefined;
  error?: string | undefined;
}): string {
  return layout(
    'Sign in to your account',
    `<h1>Sign in</h1><p class="app">to continue to ${escapeHtml(input.appName)}</p>${errorBlock(input.error)}
<form method="post" action="${escapeHtml(input.action)}">${hidden(input.hidden)}
<label for="username">Email or user name</label><input id="username" name="username" type="email" autocomplete="username" required value="${escapeHtml(input.loginHint ?? '')}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="submit">Sign in</button></form>`,
  );
}

/** The device-code verification page: the code the device shows, then the user's name and password. */
export function deviceLoginPage(input: {
  action: string;
  hidden: Readonly<Record<string, string>>;
  userCode?: string | undefined;
  error?: string | undefined;
}): string {
  return layout(
    'Enter code',
    `<h1>Enter code</h1><p class="app">Enter the code displayed on your app or device, then sign in.</p>${errorBlock(input.error)}
<form method="post" action="${escapeHtml(input.action)}">${hidden(input.hidden)}
<label for="user_code">Code</label><input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" required value="${escapeHtml(input.userCode ?? '')}">
<label for="username">Email or user name</label><input id="username" name="username" type="email" autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit" id="submit" name="decision" value="approve">Sign in</button><button type="submit" class="secondary" id="decline" name="decision" value="decline">Cancel</button></form>`,
  );
}

/** A final page: the outcome, with nothing to submit. */
export function messagePage(title: string, message: string, error = false): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>${error ? errorBlock(message) : `<p id="message">${escapeHtml(message)}</p>`}`);
}
