/**
 * Passwordless sign-in with a passkey (a discoverable credential) from the login page: the
 * page's `[data-passkey-sign-in]` button posts to `/interaction/:uid/passkey`, which answers a
 * page that runs the ceremony at once (the challenge bound to this interaction, user verification
 * required, the browser helper under a nonce CSP); the answer comes back to
 * `/interaction/:uid/passkey/verify`. The passkey names its account; the login goes on through
 * the machine as a local sign-in whose `amr` is `hwk` or `swk` with `mfa`. Offered wherever the
 * client allows local sign-in, never during a link confirmation.
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import { checkPasskeyAssertion, passkeyRefusal, startPasskeyAssertion } from '../accounts/webauthn.ts';
import { RealmgateError } from '../errors.ts';
import { homeRealmClient } from '../federation/home-realm.ts';
import { authenticated, type MachineDeps } from './machine.ts';
import type { Interaction } from './service.ts';
import { BROWSER_HELPER_URL, scriptNonce } from './webauthn-scripts.ts';

/** The route helpers the interaction router lends: its form parser and CSRF check. */
export interface PasskeyRouteHelpers {
  form: RequestHandler;
  requireCsrf(req: Request): void;
}

const clientName = (interaction: Interaction) => String(interaction.client.client_name ?? interaction.client.client_id);

/** Refuses a passkey sign-in where the login page would not offer one. */
function requireOffered(interaction: Interaction): void {
  const loginPrompt = interaction.prompt === 'login' || interaction.prompt === 'select_account';
  if (!loginPrompt || interaction.state.login) throw new RealmgateError('bad_request', { detail: 'no sign-in is pending for this interaction' });
  if (interaction.state.pendingLink) throw new RealmgateError('bad_request', { detail: 'passkey sign-in is not offered during a link confirmation' });
  if (!homeRealmClient(interaction.client).localLogin) throw new RealmgateError('bad_request', { detail: 'local sign-in (and so passkeys) is not offered to this client' });
}

async function showCeremony(deps: MachineDeps, res: Response, interaction: Interaction, refusal?: { message: string; status: number }): Promise<void> {
  const options = await startPasskeyAssertion(deps.webauthn, { purpose: 'passwordless', interactionUid: interaction.uid });
  const nonce = scriptNonce(res);
  res.status(refusal?.status ?? 200).type('html').set('cache-control', 'no-store').send(
    deps.views.render('webauthn/sign-in.njk', {
      uid: interaction.uid,
      csrf: deps.csrf.issue(interaction.uid),
      client_name: clientName(interaction),
      options_json: JSON.stringify(options),
      nonce,
      helper_url: BROWSER_HELPER_URL,
      // After a refusal the person retries with the button; the first time the ceremony starts by itself.
      autostart: !refusal,
      error: refusal?.message,
    }),
  );
}

/** Adds `/interaction/:uid/passkey` and `/interaction/:uid/passkey/verify`. */
export function registerPasskeySignInRoutes(router: Router, deps: MachineDeps, helpers: PasskeyRouteHelpers): void {
  router.post('/interaction/:uid/passkey', helpers.form, async (req, res) => {
    const interaction = await deps.interactions.load(req, res);
    helpers.requireCsrf(req);
    requireOffered(interaction);
    await showCeremony(deps, res, interaction);
  });

  router.post('/interaction/:uid/passkey/verify', helpers.form, async (req, res) => {
    const interaction = await deps.interactions.load(req, res);
    helpers.requireCsrf(req);
    requireOffered(interaction);
    const credential = (req.body as Record<string, unknown>).credential;
    const check = await checkPasskeyAssertion(deps.webauthn, { purpose: 'passwordless', interactionUid: interaction.uid, credential: typeof credential === 'string' ? credential : '', ip: req.ip ?? 'unknown' });
    const account = check.outcome === 'success' ? await deps.accounts.get(check.accountId) : undefined;
    if (check.outcome !== 'success' || !account || account.disabled) {
      deps.metrics.logins.inc({ idp: 'local', outcome: check.outcome === 'throttled' ? 'throttled' : 'failure' });
      deps.logger.warn(
        { uid: interaction.uid, outcome: check.outcome, reason: 'reason' in check ? check.reason : account?.disabled ? 'account_disabled' : undefined, detail: 'detail' in check ? check.detail : undefined },
        'passkey sign-in refused',
      );
      if (check.outcome === 'throttled') res.set('retry-after', String(check.retryAfterSeconds));
      return showCeremony(deps, res, interaction, check.outcome === 'success' ? { message: 'This account cannot sign in. Ask the administrator.', status: 403 } : passkeyRefusal(check));
    }
    deps.metrics.logins.inc({ idp: 'local', outcome: 'success' });
    deps.logger.info({ uid: interaction.uid, account_id: account.id, method: check.method, factor_id: check.factor.id }, 'passwordless sign-in with a passkey');
    await authenticated(deps, req, res, interaction, { type: 'passkey', account, method: check.method });
  });
}
