/**
 * Password reset: `[data-forgot-password]` on the password step leads to a form taking `email`;
 * an account with a password at that address gets a single-use link (30 minutes), and the page
 * answers the same whether or not one exists. The link's page takes the new `password`; setting
 * it uses the link up and ends every session of the account through the logout fan-out (each of
 * their applications gets its back-channel logout notice), in one transaction.
 */
import express, { type Request, type Response, type Router } from 'express';
import { hashPassword } from '../accounts/passwords.ts';
import { RealmgateError } from '../errors.ts';
import { homeRealmClient } from '../federation/home-realm.ts';
import {
  boundInteraction, clientName, emailProblem, field, MAIL_LINK_TTL_SECONDS, MAIL_NOT_CONFIGURED, mailLink, noticePage, passwordProblem,
  PER_ADDRESS_WINDOW_SECONDS, sendLink, sendPage, type MailPageDeps,
} from './mail-pages.ts';
import type { Interaction } from './service.ts';

/** Adds the password reset pages to the interaction router. */
export function registerPasswordResetRoutes(router: Router, deps: MailPageDeps, helpers: { form: express.RequestHandler; requireCsrf(req: Request): void }): void {
  const { interactions } = deps;

  async function loadForReset(req: Request, res: Response): Promise<Interaction> {
    const interaction = await interactions.load(req, res);
    if (interaction.prompt !== 'login' && interaction.prompt !== 'select_account') throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
    if (!homeRealmClient(interaction.client).localLogin) throw new RealmgateError('bad_request', { detail: `client ${String(interaction.client.client_id)} does not sign in with passwords` });
    return interaction;
  }

  const renderForm = (res: Response, interaction: Interaction, email: string, problem?: string, status?: number) =>
    sendPage(deps, res, status ?? (problem ? 400 : deps.mailer ? 200 : 503), 'forgot-password.njk', {
      uid: interaction.uid,
      csrf: deps.csrf.issue(interaction.uid),
      client_name: clientName(interaction),
      mail_configured: deps.mailer !== undefined,
      not_configured: MAIL_NOT_CONFIGURED,
      email,
      email_error: problem,
    });

  router.get('/interaction/:uid/forgot-password', async (req, res) => {
    const interaction = await loadForReset(req, res);
    const hint = typeof req.query.email === 'string' ? req.query.email.slice(0, 320) : typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : '';
    renderForm(res, interaction, hint);
  });

  router.post('/interaction/:uid/forgot-password', helpers.form, async (req, res) => {
    const interaction = await loadForReset(req, res);
    helpers.requireCsrf(req);
    const email = field(req, 'email', 320);
    if (!deps.mailer) {
      deps.logger.warn({ uid: interaction.uid }, 'password reset asked but no SMTP server is configured');
      return renderForm(res, interaction, email, undefined, 503);
    }
    const invalid = emailProblem(email);
    if (invalid) {
      deps.logger.warn({ uid: interaction.uid }, 'password reset form refused: invalid email');
      return renderForm(res, interaction, email, invalid);
    }
    const local = await deps.accounts.findLocalByEmail(email);
    const recent = await deps.emailLinks.countSince('reset_password', email, new Date(Date.now() - PER_ADDRESS_WINDOW_SECONDS * 1000));
    if (!local || local.account.disabled) {
      deps.logger.info({ uid: interaction.uid }, 'password reset asked for an address without an active password account; nothing sent');
    } else if (recent > 0) {
      deps.logger.warn({ uid: interaction.uid, account_id: local.account.id }, 'password reset mail for this address sent moments ago; not sent again');
    } else {
      const token = await deps.emailLinks.create({ purpose: 'reset_password', email, accountId: local.account.id, interactionUid: interaction.uid, ttlSeconds: MAIL_LINK_TTL_SECONDS });
      await sendLink(deps, deps.mailer, token, {
        to: email,
        subject: 'Reset your password',
        text: `To choose a new password, open this link within ${MAIL_LINK_TTL_SECONDS / 60} minutes:\n\n${mailLink(deps.issuer, interaction.uid, 'reset-password', token)}\n\nChanging your password signs you out everywhere. If you did not ask for this, ignore this email; your password stays as it is.\n`,
      });
      deps.logger.info({ uid: interaction.uid, account_id: local.account.id }, 'password reset mail sent');
    }
    // The same page whether or not the address has an account.
    sendPage(deps, res, 200, 'mail-sent.njk', {
      uid: interaction.uid,
      csrf: deps.csrf.issue(interaction.uid),
      client_name: clientName(interaction),
      email,
      minutes: MAIL_LINK_TTL_SECONDS / 60,
      purpose: 'reset_password',
    });
  });

  const renderReset = (res: Response, uid: string, token: string, problem?: string) =>
    sendPage(deps, res, problem ? 400 : 200, 'reset-password.njk', { uid, token, password_error: problem });

  router.get('/interaction/:uid/reset-password', async (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token.slice(0, 200) : '';
    const link = await deps.emailLinks.peek('reset_password', token);
    if (!link || link.interactionUid !== req.params.uid) return expired(res);
    renderReset(res, link.interactionUid, token);
  });

  router.post('/interaction/:uid/reset-password', helpers.form, async (req, res) => {
    const uid = String(req.params.uid);
    const token = field(req, 'token', 200);
    const password = field(req, 'password', 2000, false);
    const link = await deps.emailLinks.peek('reset_password', token);
    if (!link || link.interactionUid !== uid) return expired(res);
    const invalid = passwordProblem(password);
    if (invalid) {
      deps.logger.warn({ uid }, 'new password refused');
      return renderReset(res, uid, token, invalid);
    }
    const passwordHash = await hashPassword(password);
    const result = await deps.linking.store.transaction(async (tx) => {
      const taken = await tx.emailLinks.take('reset_password', token);
      if (!taken?.accountId) return undefined;
      const updated = await tx.accounts.update(taken.accountId, { passwordHash });
      if (!updated) return undefined;
      const ended = await tx.endAccountSessions(taken.accountId);
      await tx.audit.record({
        actor: `account:${taken.accountId}`,
        action: 'reset_password',
        resourceType: 'user',
        resourceId: taken.accountId,
        before: null,
        after: { sessions_ended: ended.sessionUids.length },
        requestId: (res.locals.requestId as string | undefined) ?? null,
      });
      return { accountId: taken.accountId, ended };
    });
    if (!result) return expired(res);
    deps.logger.info({ uid, account_id: result.accountId, sessions_ended: result.ended.sessionUids.length }, 'password reset; sessions of the account ended');
    const interaction = await boundInteraction(deps, req, res, uid);
    noticePage(deps, res, 200, {
      title: 'Your password was changed',
      message: 'You were signed out everywhere. Sign in with your new password.',
      ...(interaction ? { href: `/interaction/${encodeURIComponent(uid)}`, linkText: 'Sign in' } : {}),
    });
  });

  function expired(res: Response) {
    deps.logger.warn({ path: res.req.path }, 'password reset link unknown, used or expired');
    noticePage(deps, res, 400, { title: 'This link no longer works', message: 'The link has expired or was already used. Nothing was changed. Ask for a new one from the sign-in page.' });
  }
}
