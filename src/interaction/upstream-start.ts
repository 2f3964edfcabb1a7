import crypto from 'node:crypto';
import type { Response } from 'express';
import type { LoginStart } from '../../providers/types.ts';
import type { Views } from './views.ts';

/** Sends the browser upstream: a 303, or the auto-posting form of a POST binding (a nonce-based CSP for its one script). */
export function sendStart(views: Views, res: Response, start: LoginStart): void {
  if (start.type === 'redirect') return void res.redirect(303, start.url);
  const nonce = crypto.randomBytes(16).toString('base64');
  res
    .type('html')
    .set('content-security-policy', `default-src 'self'; script-src 'nonce-${nonce}'; frame-ancestors 'none'`)
    .send(views.render('federation/post-form.njk', { action: start.action, fields: start.fields, nonce }));
}
