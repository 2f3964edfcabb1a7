/**
 * Passkeys on the account page: `POST /account/webauthn` shows the registration page (the
 * account page session's challenge in its options, the browser helper under a nonce CSP) and
 * `POST /account/webauthn/confirm` checks the browser's answer and stores the passkey, listed
 * then with the other factors (removed through the same list). Audited as `enrol_factor`; the
 * account's first factor comes with its recovery codes, shown once, as for an authenticator app.
 */
import express, { type Response, type Router } from 'express';
import type { Services } from '../app.ts';
import { regenerateRecoveryCodes, type TotpDeps } from '../accounts/totp.ts';
import { accountSessionBinding, finishPasskeyRegistration, startPasskeyRegistration, type WebauthnDeps } from '../accounts/webauthn.ts';
import { BROWSER_HELPER_URL, scriptNonce } from '../interaction/webauthn-scripts.ts';
import type { AccountPageHelpers } from './mfa-routes.ts';

/** A registration answer carries an attestation object: more than the account page's usual form limit. */
const credentialForm = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 10 });

const DEFAULT_LABEL = 'Passkey';

/** Adds `/account/webauthn` and `/account/webauthn/confirm`. */
export function registerWebauthnRoutes(router: Router, services: Services, deps: { webauthn: WebauthnDeps; totp: TotpDeps }, helpers: AccountPageHelpers): void {
  const { views, logger, audit } = services;
  const requestId = (res: Response) => (res.locals.requestId as string | undefined) ?? null;

  router.post('/account/webauthn', helpers.form, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    const options = await startPasskeyRegistration(deps.webauthn, who.account, accountSessionBinding(who.sessionUid));
    const nonce = scriptNonce(res);
    res.status(200).type('html').set('cache-control', 'no-store').send(
      views.render('webauthn/register.njk', { csrf: helpers.csrfFor(who), options_json: JSON.stringify(options), nonce, helper_url: BROWSER_HELPER_URL, label: DEFAULT_LABEL }),
    );
  });

  router.post('/account/webauthn/confirm', credentialForm, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    const body = req.body as Record<string, unknown>;
    const label = (typeof body.label === 'string' ? body.label.trim().slice(0, 64) : '') || DEFAULT_LABEL;
    const hadFactor = await deps.totp.factors.hasFactor(who.account.id);
    const result = await finishPasskeyRegistration(deps.webauthn, { account: who.account, binding: accountSessionBinding(who.sessionUid), credential: typeof body.credential === 'string' ? body.credential : '', label });
    if (result.outcome !== 'success') {
      logger.warn({ account_id: who.account.id, reason: result.reason, detail: result.detail }, 'passkey registration refused');
      const error = result.reason === 'duplicate'
        ? 'That passkey is already registered. Nothing changed.'
        : 'The passkey could not be registered. Nothing changed. Start again with "Add a passkey".';
      return helpers.render(res, who, { error }, result.reason === 'duplicate' ? 409 : 400);
    }
    await audit.record({ actor: `account:${who.account.id}`, action: 'enrol_factor', resourceType: 'user', resourceId: who.account.id, before: null, after: { factor_id: result.factor.id, kind: 'webauthn' }, requestId: requestId(res) });
    logger.info({ account_id: who.account.id, factor_id: result.factor.id }, 'passkey registered from the account page');
    if (hadFactor) return helpers.render(res, who, { message: `Your passkey "${result.factor.label}" is set up.` });
    const codes = await regenerateRecoveryCodes(deps.totp, who.account.id);
    res.status(200).type('html').set('cache-control', 'no-store').send(
      views.render('mfa/recovery-codes.njk', { codes, message: `Your passkey "${result.factor.label}" is set up.`, continue_url: '/account' }),
    );
  });
}
