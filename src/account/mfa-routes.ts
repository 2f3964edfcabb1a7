/**
 * The account page's security settings: the second factors (enrol an authenticator app, rename
 * or remove one, whatever its kind) and the recovery codes (regenerate, shown once). Every change
 * is audited. The last factor cannot be removed here once the account signed in to a client with
 * `mfa: "required"` (an administrator can reset the factors); otherwise it can.
 */
import express, { type Request, type Response, type Router } from 'express';
import type { Account } from '../store/accounts.ts';
import { checkTotpCode, codeRefusal, pendingEnrolment, regenerateRecoveryCodes, startTotpEnrolment, type TotpDeps, type TotpEnrolment } from '../accounts/totp.ts';
import type { Services } from '../app.ts';
import { RealmgateError } from '../errors.ts';

/** What the security routes get from the account page: who is signed in, its CSRF token, its page. */
export interface AccountPageHelpers {
  form: express.RequestHandler;
  requireSignedIn(req: Request, res: Response): Promise<{ sessionUid: string; account: Account }>;
  csrfFor(who: { sessionUid: string; account: Account }): string;
  render(res: Response, who: { sessionUid: string; account: Account }, notice?: AccountNotice, status?: number): Promise<void>;
}

/** What the account page says after a form: a page-level error or message, or an error tied to one field of one form. */
export interface AccountNotice {
  error?: string;
  message?: string;
  /** An error of one input: the form it belongs to (e.g. `rename:<factor id>`) and the sentence. */
  fieldError?: { form: string; message: string };
}

/** Longest name a factor may be given. */
export const FACTOR_LABEL_MAX_LENGTH = 64;

/** The refusal of a proposed factor name, or undefined when it is acceptable (1–64 printable characters once trimmed). */
export function factorLabelProblem(label: string): string | undefined {
  if (!label) return 'Enter a name for this second factor.';
  if (label.length > FACTOR_LABEL_MAX_LENGTH) return `Use at most ${FACTOR_LABEL_MAX_LENGTH} characters.`;
  if (/[\u0000-\u001f\u007f]/.test(label)) return 'Use letters, digits, spaces and punctuation only.';
  return undefined;
}

const FACTOR_ID = /^[0-9a-f-]{36}$/;

/** What the account page calls each kind of factor (a kind missing here is shown by its name). */
export const FACTOR_KIND_NAMES: Readonly<Record<string, string>> = { totp: 'authenticator app', webauthn: 'passkey or security key' };

/** The factors part of the account page's view: each confirmed factor, and how many recovery codes are left. */
export async function factorsView(totp: TotpDeps, accountId: string) {
  const factors = await totp.factors.list(accountId);
  return {
    factors: factors.map((f) => ({ id: f.id, kind: f.kind, label: f.label, created_at: f.createdAt.toISOString().slice(0, 10), last_used_at: f.lastUsedAt?.toISOString().slice(0, 10) })),
    recovery_codes_left: factors.length ? await totp.factors.recoveryCodesLeft(accountId) : 0,
    factor_kinds: FACTOR_KIND_NAMES,
  };
}

/** Adds `/account/totp`, `/account/totp/confirm`, `/account/factors/rename`, `/account/factors/remove` and `/account/recovery-codes`. */
export function registerMfaRoutes(router: Router, services: Services, totp: TotpDeps, helpers: AccountPageHelpers): void {
  const { views, logger, audit, store } = services;
  const requestId = (res: Response) => (res.locals.requestId as string | undefined) ?? null;

  function showEnrolment(res: Response, who: { sessionUid: string; account: Account }, view: TotpEnrolment, error?: { message: string; status: number }) {
    res.status(error?.status ?? 200).type('html').set('cache-control', 'no-store').send(
      views.render('mfa/enrol.njk', {
        csrf: helpers.csrfFor(who),
        action: '/account/totp/confirm',
        cancel_url: '/account',
        factor_id: view.factorId,
        secret: view.secret,
        qr_svg: view.qrSvg,
        code_error: error?.message,
      }),
    );
  }

  const showCodes = (res: Response, codes: string[], message: string) =>
    res.status(200).type('html').set('cache-control', 'no-store').send(views.render('mfa/recovery-codes.njk', { codes, message, continue_url: '/account' }));

  router.post('/account/totp', helpers.form, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    showEnrolment(res, who, await startTotpEnrolment(totp, who.account));
  });

  router.post('/account/totp/confirm', helpers.form, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    const body = req.body as Record<string, unknown>;
    const factorId = String(body.factor_id ?? '');
    const view = FACTOR_ID.test(factorId) ? await pendingEnrolment(totp, who.account, factorId) : undefined;
    if (!view) {
      logger.warn({ account_id: who.account.id }, 'authenticator confirmation for no pending enrolment');
      return helpers.render(res, who, { error: 'That set-up is no longer pending. Start again with "Set up an authenticator app".' }, 400);
    }
    const hadFactor = await totp.factors.hasFactor(who.account.id);
    const check = await checkTotpCode(totp, { accountId: who.account.id, code: String(body.code ?? '').slice(0, 64), ip: req.ip ?? 'unknown', factorId });
    if (check.outcome !== 'success') {
      logger.warn({ account_id: who.account.id, outcome: check.outcome }, 'authenticator confirmation refused');
      if (check.outcome === 'throttled') res.set('retry-after', String(check.retryAfterSeconds));
      return showEnrolment(res, who, view, codeRefusal(check));
    }
    await audit.record({ actor: `account:${who.account.id}`, action: 'enrol_factor', resourceType: 'user', resourceId: who.account.id, before: null, after: { factor_id: factorId, kind: 'totp' }, requestId: requestId(res) });
    logger.info({ account_id: who.account.id, factor_id: factorId }, 'authenticator app enrolled from the account page');
    if (hadFactor) return helpers.render(res, who, { message: 'Your new authenticator app is set up.' });
    showCodes(res, await regenerateRecoveryCodes(totp, who.account.id), 'Your authenticator app is set up.');
  });

  router.post('/account/factors/remove', helpers.form, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    const factorId = String((req.body as Record<string, unknown>).factor_id ?? '');
    if (!FACTOR_ID.test(factorId)) throw new RealmgateError('bad_request', { detail: 'factor removal without a factor id' });
    const factors = await totp.factors.list(who.account.id);
    const factor = factors.find((f) => f.id === factorId);
    if (!factor) {
      logger.warn({ account_id: who.account.id, factor_id: factorId }, 'removal of a second factor the account does not have');
      return helpers.render(res, who, { error: 'That second factor is not on your account. Nothing changed.' }, 404);
    }
    if (factors.length === 1 && (await totp.factors.isRequired(who.account.id))) {
      logger.warn({ account_id: who.account.id, factor_id: factorId }, 'removal of the last second factor refused: a client requires one');
      return helpers.render(res, who, { error: `"${factor.label}" is your only second factor and an application you use requires one, so it can't be removed. Set up another one first. Nothing changed.` }, 409);
    }
    await store.transaction(async (tx) => {
      await tx.mfaFactors.remove(who.account.id, factorId);
      if (factors.length === 1) await tx.mfaFactors.removeRecoveryCodes(who.account.id);
      await tx.audit.record({ actor: `account:${who.account.id}`, action: 'remove_factor', resourceType: 'user', resourceId: who.account.id, before: { factor_id: factorId, kind: factor.kind, label: factor.label }, after: null, requestId: requestId(res) });
    });
    logger.info({ account_id: who.account.id, factor_id: factorId, kind: factor.kind }, 'second factor removed from the account page');
    return helpers.render(res, who, { message: factor.kind === 'webauthn' ? `The passkey "${factor.label}" was removed.` : `"${factor.label}" was removed.` });
  });

  router.post('/account/factors/rename', helpers.form, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    const body = req.body as Record<string, unknown>;
    const factorId = String(body.factor_id ?? '');
    if (!FACTOR_ID.test(factorId)) throw new RealmgateError('bad_request', { detail: 'factor rename without a factor id' });
    const label = String(body.label ?? '').slice(0, 1024).trim();
    const factor = (await totp.factors.list(who.account.id)).find((f) => f.id === factorId);
    if (!factor) {
      logger.warn({ account_id: who.account.id, factor_id: factorId }, 'rename of a second factor the account does not have');
      return helpers.render(res, who, { error: 'That second factor is not on your account. Nothing changed.' }, 404);
    }
    const problem = factorLabelProblem(label);
    if (problem) {
      logger.warn({ account_id: who.account.id, factor_id: factorId }, 'second factor rename refused: invalid name');
      return helpers.render(res, who, { fieldError: { form: `rename:${factorId}`, message: problem } }, 400);
    }
    if (label === factor.label) return helpers.render(res, who, { message: `"${label}" keeps its name.` });
    await store.transaction(async (tx) => {
      await tx.mfaFactors.rename(who.account.id, factorId, label);
      await tx.audit.record({ actor: `account:${who.account.id}`, action: 'rename_factor', resourceType: 'user', resourceId: who.account.id, before: { factor_id: factorId, kind: factor.kind, label: factor.label }, after: { factor_id: factorId, kind: factor.kind, label }, requestId: requestId(res) });
    });
    logger.info({ account_id: who.account.id, factor_id: factorId, kind: factor.kind }, 'second factor renamed from the account page');
    return helpers.render(res, who, { message: `"${factor.label}" is now called "${label}".` });
  });

  router.post('/account/recovery-codes', helpers.form, async (req, res) => {
    const who = await helpers.requireSignedIn(req, res);
    if (!(await totp.factors.hasFactor(who.account.id))) return helpers.render(res, who, { error: 'Set up an authenticator app first; recovery codes come with it.' }, 409);
    const codes = await regenerateRecoveryCodes(totp, who.account.id);
    await audit.record({ actor: `account:${who.account.id}`, action: 'regenerate_recovery_codes', resourceType: 'user', resourceId: who.account.id, before: null, after: null, requestId: requestId(res) });
    showCodes(res, codes, 'New recovery codes were made; the old ones no longer work.');
  });
}
