/**
 * Self-registration (per client `registration: true`, default false): the login page links
 * `[data-register]`; the page takes `email`, `password` and `name`, and mails a single-use link
 * (30 minutes). Nothing is created before the address is proved: the link carries the request
 * (the password already hashed, sealed at rest), and confirming it creates the local account with
 * a verified email, then finishes the login in the browser that began it (any node can). An
 * address that already has an account gets a mail saying so instead; the page answers the same.
 */
import express, { type Request, type Response, type Router } from 'express';
import { emailTaken } from '../store/accounts.ts';
import { hashPassword } from '../accounts/passwords.ts';
import { RealmgateError } from '../errors.ts';
import { homeRealmClient } from '../federation/home-realm.ts';
import {
  boundInteraction, clientName, emailProblem, field, MAIL_LINK_TTL_SECONDS, MAIL_NOT_CONFIGURED, mailLink, noticePage, passwordProblem,
  PER_ADDRESS_WINDOW_SECONDS, sendLink, sendPage, type MailPageDeps,
} from './mail-pages.ts';
import { authenticated } from './machine.ts';
import type { Interaction } from './service.ts';

/** True when the interaction's client lets people create an account (and signs in with passwords at all). */
export function registrationAllowed(client: Record<string, unknown>): boolean {
  return client.registration === true && homeRealmClient(client).localLogin;
}

type Problems = Partial<Record<'email' | 'password' | 'name', string>>;

function renderForm(deps: MailPageDeps, res: Response, interaction: Interaction, values: { email?: string; name?: string } = {}, problems: Problems = {}, status?: number) {
  const invalid = Object.keys(problems).length > 0;
  sendPage(deps, res, status ?? (invalid ? 400 : deps.mailer ? 200 : 503), 'register.njk', {
    uid: interaction.uid,
    csrf: deps.csrf.issue(interaction.uid),
    client_name: clientName(interaction),
    mail_configured: deps.mailer !== undefined,
    not_configured: MAIL_NOT_CONFIGURED,
    email: values.email ?? '',
    name: values.name ?? '',
    errors: problems,
    error: invalid ? 'Some details need your attention.' : undefined,
  });
}

/** Adds the registration pages to the interaction router. */
export function registerRegistrationRoutes(router: Router, deps: MailPageDeps, helpers: { form: express.RequestHandler; requireCsrf(req: Request): void }): void {
  const { interactions } = deps;

  async function loadForRegistration(req: Request, res: Response): Promise<Interaction> {
    const interaction = await interactions.load(req, res);
    if (interaction.prompt !== 'login' && interaction.prompt !== 'select_account') throw new RealmgateError('bad_request', { detail: 'no login is pending for this interaction' });
    if (!registrationAllowed(interaction.client)) throw new RealmgateError('bad_request', { detail: `client ${String(interaction.client.client_id)} does not allow registration` });
    return interaction;
  }

  router.get('/interaction/:uid/register', async (req, res) => {
    renderForm(deps, res, await loadForRegistration(req, res));
  });

  router.post('/interaction/:uid/register', helpers.form, async (req, res) => {
    const interaction = await loadForRegistration(req, res);
    helpers.requireCsrf(req);
    const email = field(req, 'email', 320);
    const name = field(req, 'name', 200);
    const password = field(req, 'password', 2000, false);
    if (!deps.mailer) {
      deps.logger.warn({ uid: interaction.uid }, 'registration asked but no SMTP server is configured');
      return renderForm(deps, res, interaction, { email, name }, {}, 503);
    }
    const problems: Problems = {};
    const emailInvalid = emailProblem(email);
    if (emailInvalid) problems.email = emailInvalid;
    const passwordInvalid = passwordProblem(password);
    if (passwordInvalid) problems.password = passwordInvalid;
    if (/\p{Cc}/u.test(name)) problems.name = 'Your name contains characters that are not allowed.';
    if (Object.keys(problems).length) {
      deps.logger.warn({ uid: interaction.uid, invalid: Object.keys(problems) }, 'registration form refused');
      return renderForm(deps, res, interaction, { email, name }, problems);
    }

    const recent = await deps.emailLinks.countSince('register', email, new Date(Date.now() - PER_ADDRESS_WINDOW_SECONDS * 1000));
    const existing = (await deps.accounts.findLocalByEmail(email)) ?? (await deps.accounts.findVerifiedByEmail(email))[0];
    if (recent > 0) {
      deps.logger.warn({ uid: interaction.uid }, 'registration mail for this address sent moments ago; not sent again');
    } else if (existing) {
      deps.logger.info({ uid: interaction.uid, account_id: 'account' in existing ? existing.account.id : existing.id }, 'registration for an address that has an account; told by mail');
      await deps.mailer.send({
        to: email,
        subject: `You already have an account for ${clientName(interaction)}`,
        text: `Someone, hopefully you, tried to create an account with this address at ${deps.issuer}.\n\nYou already have one: sign in, or choose "Forgot your password?" on the sign-in page.\n\nIf it was not you, you can ignore this email.\n`,
      });
    } else {
      const token = await deps.emailLinks.create({
        purpose: 'register',
        email,
        interactionUid: interaction.uid,
        payload: { passwordHash: await hashPassword(password), name: name || null },
        ttlSeconds: MAIL_LINK_TTL_SECONDS,
      });
      await sendLink(deps, deps.mailer, token, {
        to: email,
        subject: `Confirm your email for ${clientName(interaction)}`,
        text: `To finish creating your account, open this link within ${MAIL_LINK_TTL_SECONDS / 60} minutes:\n\n${mailLink(deps.issuer, interaction.uid, 'verify-email', token)}\n\nIf you did not ask for an account, ignore this email; nothing is created.\n`,
      });
      deps.logger.info({ uid: interaction.uid }, 'registration verification mail sent');
    }
    sendPage(deps, res, 200, 'mail-sent.njk', {
      uid: interaction.uid,
      csrf: deps.csrf.issue(interaction.uid),
      client_name: clientName(interaction),
      email,
      minutes: MAIL_LINK_TTL_SECONDS / 60,
      purpose: 'register',
    });
  });

  // Opening the link shows a button: mail scanners that fetch links do not use them up.
  router.get('/interaction/:uid/verify-email', async (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token.slice(0, 200) : '';
    const link = await deps.emailLinks.peek('register', token);
    if (!link || link.interactionUid !== req.params.uid) return expired(res);
    sendPage(deps, res, 200, 'verify-email.njk', { uid: link.interactionUid, token, email: link.email });
  });

  router.post('/interaction/:uid/verify-email', helpers.form, async (req, res) => {
    const uid = String(req.params.uid);
    const token = field(req, 'token', 200);
    const link = await deps.emailLinks.peek('register', token);
    if (!link || link.interactionUid !== uid) return expired(res);
    let account;
    try {
      account = await deps.linking.store.transaction(async (tx) => {
        const taken = await tx.emailLinks.take('register', token);
        if (!taken) return undefined;
        if ((await tx.accounts.findVerifiedByEmail(taken.email)).length) throw emailTaken(taken.email);
        const created = await tx.accounts.create({
          email: taken.email,
          emailVerified: true,
          name: (taken.payload.name as string | null) ?? null,
          passwordHash: taken.payload.passwordHash as string,
        });
        await tx.audit.record({
          actor: `account:${created.id}`,
          action: 'register',
          resourceType: 'user',
          resourceId: created.id,
          before: null,
          after: { email: created.email, email_verified: true },
          requestId: (res.locals.requestId as string | undefined) ?? null,
        });
        return created;
      });
    } catch (error) {
      if (!(error instanceof RealmgateError && error.code === 'email_taken')) throw error;
      deps.logger.warn({ uid }, 'registration confirmed for an address that got an account meanwhile; nothing created');
      return noticePage(deps, res, 409, { title: 'You already have an account', message: 'An account with this email address already exists. Sign in with it instead.' });
    }
    if (!account) return expired(res);
    deps.logger.info({ uid, account_id: account.id }, 'account registered; email verified');
    const interaction = await boundInteraction(deps, req, res, uid);
    if (!interaction) {
      return noticePage(deps, res, 200, { title: 'Your email is verified', message: 'Your account is ready. Go back to the application and sign in with your email and password.' });
    }
    await authenticated(deps, req, res, interaction, { type: 'password', account });
  });

  function expired(res: Response) {
    deps.logger.warn({ path: res.req.path }, 'verification link unknown, used or expired');
    noticePage(deps, res, 400, { title: 'This link no longer works', message: 'The link has expired or was already used. Nothing was changed. Go back to the application and register again.' });
  }
}
