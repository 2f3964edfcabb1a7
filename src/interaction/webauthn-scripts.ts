/**
 * The scripts of the passkey pages, served by Realmgate itself (no third-party host): the
 * @simplewebauthn/browser bundle at `/webauthn/simplewebauthn-browser.js` and the pages' glue at
 * `/assets/webauthn.js`. Only the pages that run a ceremony load them, under a nonce CSP
 * (`scriptNonce`); every other page keeps `script-src 'none'`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { type Response, type Router } from 'express';

/** Where the browser helper's UMD bundle is (it defines `SimpleWebAuthnBrowser`). */
function browserBundlePath(): string {
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  // The package's CommonJS entry is script/index.js; its browser bundle sits beside it in dist/bundle.
  return path.join(path.dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js');
}

/** The URL the pages load the browser helper from. */
export const BROWSER_HELPER_URL = '/webauthn/simplewebauthn-browser.js';

/** Serves the browser helper (read once, at start). */
export function webauthnScriptRoutes(): Router {
  const router = express.Router();
  const bundle = fs.readFileSync(browserBundlePath());
  const etag = `"${crypto.createHash('sha256').update(bundle).digest('base64url').slice(0, 27)}"`;
  router.get(BROWSER_HELPER_URL, (req, res) => {
    res.set({ 'cache-control': 'public, max-age=3600', etag, 'x-content-type-options': 'nosniff' });
    if (req.get('if-none-match') === etag) return void res.status(304).end();
    res.type('text/javascript').send(bundle);
  });
  return router;
}

/**
 * Sets a CSP for this response only that lets the page's scripts carrying the returned nonce run;
 * nothing else runs. No `form-action`: the answer's form post ends in a redirect to the
 * application, which browsers would check against it.
 */
export function scriptNonce(res: Response): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  res.set('content-security-policy', `default-src 'self'; script-src 'nonce-${nonce}'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`);
  return nonce;
}
