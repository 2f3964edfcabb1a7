/**
 * Signing out upstream when a user signs out of an application: after RP-initiated logout ended
 * the local session, the browser goes to the upstream's logout endpoint (OIDC end_session with
 * `id_token_hint`, SAML LogoutRequest) and comes back to Realmgate, which sends it on to the
 * application. An upstream that does not answer within the upstream timeout does not trap the
 * user: the local logout is done, and a page says the upstream session may still be open.
 */
import crypto from 'node:crypto';
import { signsOutUpstream, type BrowserSend, type CallbackInput, type OpenContext } from '../../providers/types.ts';
import { newReference } from '../errors.ts';
import type { ProviderCache } from '../federation/provider-cache.ts';
import type { Views } from '../interaction/views.ts';
import type { Logger } from '../logger.ts';
import type { LogoutContinuation } from '../token-server/engine.ts';
import type { LoginSessionRepository } from '../store/login-sessions.ts';
import { LogoutTransactionStore } from '../store/logout-transactions.ts';

/** What signing out upstream needs. */
export interface UpstreamSignOutDeps {
  cache: ProviderCache;
  loginSessions: Pick<LoginSessionRepository, 'get'>;
  logoutTransactions: LogoutTransactionStore;
  context: Pick<OpenContext, 'endpointUrl' | 'fetch'>;
  views: Views;
  logger: Logger;
}

/** The page (or redirect) that sends the browser upstream: a 303, or an auto-posting form. */
export function browserSend(views: Views, send: BrowserSend): LogoutContinuation {
  if (send.type === 'redirect') return { type: 'redirect', url: send.url };
  const nonce = crypto.randomBytes(16).toString('base64');
  return {
    type: 'html',
    body: views.render('federation/post-form.njk', { action: send.action, fields: send.fields, nonce, purpose: 'sign-out' }),
    contentSecurityPolicy: `default-src 'self'; script-src 'nonce-${nonce}'; form-action ${new URL(send.action).origin}; frame-ancestors 'none'`,
  };
}

/** True when the upstream's logout endpoint answers at all within the upstream timeout. */
async function answers(deps: UpstreamSignOutDeps, url: string): Promise<boolean> {
  try {
    const response = await deps.context.fetch(new URL(url).origin + '/', { method: 'HEAD' });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/**
 * After RP-initiated logout of `sessionUid`: the upstream sign-out to continue with, or undefined
 * when the session was local, the provider does not sign out upstream, or its `upstream_logout`
 * is off. `location` is where the engine was sending the browser.
 */
export async function signOutUpstream(deps: UpstreamSignOutDeps, sessionUid: string, location: string): Promise<LogoutContinuation | undefined> {
  try {
    return await startSignOut(deps, sessionUid, location);
  } catch (error) {
    // The local logout is done whatever happens here: never trap the user on an error page.
    const ref = newReference();
    deps.logger.error({ ref, err: error, session_uid: sessionUid }, 'upstream sign-out could not start; the local logout is done');
    return { type: 'html', body: deps.views.render('federation/upstream-signout-unreachable.njk', { provider_name: 'your identity provider', continue_to: location, ref }) };
  }
}

async function startSignOut(deps: UpstreamSignOutDeps, sessionUid: string, location: string): Promise<LogoutContinuation | undefined> {
  const login = await deps.loginSessions.get(sessionUid);
  if (!login?.upstream || login.idp === 'local') return undefined;
  const alias = login.idp;
  const log = deps.logger.child({ alias, session_uid: sessionUid });
  const unreachable = (reason: unknown, name: string): LogoutContinuation => {
    const ref = newReference();
    log.warn({ ref, reason: reason instanceof Error ? reason.message : String(reason) }, 'upstream sign-out skipped: the provider did not answer; the local logout is done');
    return { type: 'html', body: deps.views.render('federation/upstream-signout-unreachable.njk', { provider_name: name, continue_to: location, ref }) };
  };
  let provider;
  try {
    provider = await deps.cache.get(alias);
  } catch (error) {
    return unreachable(error, deps.cache.displayName(alias) ?? alias);
  }
  if (!signsOutUpstream(provider.opened)) return undefined;
  const transactionId = LogoutTransactionStore.newId();
  const returnUrl = deps.context.endpointUrl(alias, 'logged-out');
  const start = await provider.opened.startLogout(login.upstream, { transactionId, returnUrl });
  if (!start) return undefined;
  const target = start.type === 'redirect' ? start.url : start.action;
  if (!(await answers(deps, target))) return unreachable(new Error(`${new URL(target).origin} did not answer`), provider.displayName);
  await deps.logoutTransactions.save(transactionId, { kind: 'logout', alias, continueTo: location, data: start.transaction });
  log.info('signing out upstream after application logout');
  const { transaction: _transaction, ...send } = start;
  return browserSend(deps.views, send);
}

/**
 * The upstream's return after signing out: takes the transaction named by `transactionId`, lets
 * the provider check the answer, and gives the URL the browser goes on to (the application's).
 * Undefined when no such sign-out is in progress (the caller shows the signed-out page).
 */
export async function finishUpstreamSignOut(deps: UpstreamSignOutDeps, alias: string, transactionId: string, input: CallbackInput): Promise<string | undefined> {
  const transaction = await deps.logoutTransactions.take(transactionId, alias);
  if (!transaction) return undefined;
  const provider = await deps.cache.get(alias);
  if (signsOutUpstream(provider.opened)) await provider.opened.finishLogout(input, transaction.data);
  deps.logger.info({ alias }, 'upstream sign-out finished');
  return transaction.continueTo;
}
