import type { Request, Response } from 'express';
import { checkSecondFactor, checkTotpCode, codeRefusal, pendingEnrolment, regenerateRecoveryCodes, startTotpEnrolment, type TotpEnrolment } from '../../accounts/totp.ts';
import { checkPasskeyAssertion, finishPasskeyRegistration, passkeyAmr, passkeyRefusal, startPasskeyAssertion, startPasskeyRegistration } from '../../accounts/webauthn.ts';
import type { InteractionStep, MachineDeps } from '../machine.ts';
import { BROWSER_HELPER_URL, scriptNonce } from '../webauthn-scripts.ts';
import type { Interaction } from '../service.ts';

/** When a client asks for a second factor: `off`, `if_enrolled` (the default) or `required`. */
export type MfaPolicy = 'off' | 'if_enrolled' | 'required';

/** The `acr` of a login that passed a second factor; `acr_values` naming it asks for one. */
export const ACR_MFA = 'mfa';
/** The `acr` of a single-factor login. */
export const ACR_SINGLE_FACTOR = 'sfa';

/** The `acr` a login's `amr` earns. */
export const acrOf = (amr: readonly string[]) => (amr.includes('mfa') ? ACR_MFA : ACR_SINGLE_FACTOR);

/** The policy for this interaction: the client's `mfa`, raised to `required` when `acr_values` asks for `mfa`. */
export function mfaPolicy(interaction: Pick<Interaction, 'client' | 'params'>): MfaPolicy {
  const acrValues = typeof interaction.params.acr_values === 'string' ? interaction.params.acr_values.split(/\s+/) : [];
  if (acrValues.includes(ACR_MFA)) return 'required';
  const mfa = interaction.client.mfa;
  return mfa === 'off' || mfa === 'required' ? mfa : 'if_enrolled';
}

const clientName = (interaction: Interaction) => String(interaction.client.client_name ?? interaction.client.client_id);

/** True when the decided login already passed a second factor here (or, for a local sign-in, in the session it adopted). */
function secondFactorDone(interaction: Interaction): boolean {
  const login = interaction.state.login!;
  return login.secondFactor !== undefined || (login.result.idp === 'local' && login.result.amr.includes('mfa'));
}

/** The enrolment this login walks through: the one it started, or a new one. */
async function enrolment(deps: MachineDeps, interaction: Interaction): Promise<TotpEnrolment> {
  const account = (await deps.accounts.get(interaction.state.login!.accountId))!;
  const started = interaction.state.mfaEnrolment ? await pendingEnrolment(deps.totp, account, interaction.state.mfaEnrolment) : undefined;
  if (started) return started;
  const fresh = await startTotpEnrolment(deps.totp, account);
  interaction.state.mfaEnrolment = fresh.factorId;
  await deps.interactions.save(interaction);
  return fresh;
}

/** Shows the step's page; a refusal's message goes beside the code field, or beside the passkey button when `notice.passkey`. */
async function show(deps: MachineDeps, res: Response, interaction: Interaction, notice?: { message: string; status: number; passkey?: boolean }) {
  const accountId = interaction.state.login!.accountId;
  const common = {
    uid: interaction.uid,
    csrf: deps.csrf.issue(interaction.uid),
    client_name: clientName(interaction),
    ...(notice?.passkey ? { passkey_error: notice.message } : { code_error: notice?.message }),
  };
  res.status(notice?.status ?? 200).type('html').set('cache-control', 'no-store');
  const kinds = await deps.totp.factors.kinds(accountId);
  if (kinds.size) {
    // The methods the account has: a code field for an authenticator app, a passkey button for a passkey (recovery codes either way).
    const passkey = kinds.has('webauthn') ? await startPasskeyAssertion(deps.webauthn, { purpose: 'second_factor', interactionUid: interaction.uid, accountId }) : undefined;
    return void res.send(
      deps.views.render('mfa/code.njk', {
        ...common,
        totp: kinds.has('totp'),
        ...(passkey ? { passkey_options_json: JSON.stringify(passkey), nonce: scriptNonce(res), helper_url: BROWSER_HELPER_URL } : {}),
      }),
    );
  }
  const view = await enrolment(deps, interaction);
  // Or a passkey instead: its registration challenge is bound to this interaction.
  const account = (await deps.accounts.get(accountId))!;
  const passkey = await startPasskeyRegistration(deps.webauthn, account, interaction.uid);
  res.send(
    deps.views.render('mfa/enrol.njk', {
      ...common,
      passkey_options_json: JSON.stringify(passkey),
      nonce: scriptNonce(res),
      helper_url: BROWSER_HELPER_URL,
      intro: `${clientName(interaction)} asks for a second factor at sign-in. Set up an authenticator app or add a passkey to continue.`,
      action: `/interaction/${encodeURIComponent(interaction.uid)}/mfa`,
      factor_id: view.factorId,
      secret: view.secret,
      qr_svg: view.qrSvg,
    }),
  );
}

/** A passkey answered the step's challenge: checked, and on success `hwk` or `swk` and `mfa` join the login's `amr`. */
async function passkeySubmitted(deps: MachineDeps, res: Response, interaction: Interaction, credential: string, ip: string): Promise<boolean> {
  const login = interaction.state.login!;
  const check = await checkPasskeyAssertion(deps.webauthn, { purpose: 'second_factor', interactionUid: interaction.uid, accountId: login.accountId, credential, ip });
  if (check.outcome !== 'success') {
    deps.logger.warn({ uid: interaction.uid, account_id: login.accountId, outcome: check.outcome, reason: 'reason' in check ? check.reason : undefined, detail: 'detail' in check ? check.detail : undefined }, 'passkey second factor refused');
    if (check.outcome === 'throttled') res.set('retry-after', String(check.retryAfterSeconds));
    await show(deps, res, interaction, { ...passkeyRefusal(check), passkey: true });
    return false;
  }
  login.secondFactor = 'passkey';
  if (mfaPolicy(interaction) === 'required') await deps.totp.factors.markRequired(login.accountId);
  login.result = { ...login.result, amr: [...new Set([...login.result.amr, check.method, 'mfa'])] };
  deps.logger.info({ uid: interaction.uid, account_id: login.accountId, method: check.method, factor_id: check.factor.id }, 'second factor passed');
  return true;
}

/** A login under `required` enrols a passkey as its first factor: stored, audited, and the recovery codes shown once; the registration counts as the factor passed. */
async function passkeyEnrolled(deps: MachineDeps, res: Response, interaction: Interaction, credential: string, label: string): Promise<boolean> {
  const login = interaction.state.login!;
  const account = (await deps.accounts.get(login.accountId))!;
  const result = await finishPasskeyRegistration(deps.webauthn, { account, binding: interaction.uid, credential, label });
  if (result.outcome !== 'success') {
    deps.logger.warn({ uid: interaction.uid, account_id: login.accountId, reason: result.reason, detail: result.detail }, 'passkey registration refused');
    await show(deps, res, interaction, { message: 'The passkey could not be added. Nothing changed. Try again, or set up an authenticator app.', status: 400, passkey: true });
    return false;
  }
  const factor = result.factor;
  login.secondFactor = 'passkey';
  await deps.totp.factors.markRequired(login.accountId);
  login.result = { ...login.result, amr: [...new Set([...login.result.amr, passkeyAmr(factor.webauthn!), 'mfa'])] };
  if (interaction.state.mfaEnrolment) await deps.totp.factors.remove(login.accountId, interaction.state.mfaEnrolment);
  delete interaction.state.mfaEnrolment;
  const requestId = (res.locals.requestId as string | undefined) ?? null;
  await deps.linking.store.audit.record({ actor: `account:${login.accountId}`, action: 'enrol_factor', resourceType: 'user', resourceId: login.accountId, before: null, after: { factor_id: factor.id, kind: 'webauthn' }, requestId });
  deps.logger.info({ uid: interaction.uid, account_id: login.accountId, factor_id: factor.id }, 'passkey enrolled during the login');
  const codes = await regenerateRecoveryCodes(deps.totp, login.accountId);
  await deps.interactions.save(interaction);
  res.status(200).type('html').set('cache-control', 'no-store').send(
    deps.views.render('mfa/recovery-codes.njk', { codes, message: `Your passkey "${factor.label}" is set up.`, continue_url: `/interaction/${encodeURIComponent(interaction.uid)}` }),
  );
  return false;
}

/**
 * The second factor after the sign-in (MFA): under the interaction's policy (`mfaPolicy`), a
 * local password sign-in, or a federated one whose provider has `require_local_mfa`, is asked for
 * a TOTP code, a passkey or a recovery code (each account is offered the kinds it has); under
 * `required` an account without a factor enrols one here (an authenticator app: QR code, manual
 * key, first code; or a passkey) and sees its recovery codes once. Federated sign-ins are otherwise trusted to the upstream. Passing
 * adds `otp` (a TOTP code) or `hwk`/`swk` (a device-bound or a synced passkey), and `mfa`, to the
 * login's `amr`.
 */
export const mfaStep: InteractionStep = {
  name: 'mfa',
  async pending(deps, interaction) {
    const login = interaction.state.login;
    if (!login || secondFactorDone(interaction)) return false;
    const policy = mfaPolicy(interaction);
    if (policy === 'off') return false;
    if (login.result.idp !== 'local' && !login.requireLocalMfa) return false;
    if (policy === 'required') return true;
    return deps.totp.factors.hasFactor(login.accountId);
  },
  render(deps: MachineDeps, res: Response, interaction: Interaction, notice?: string) {
    return show(deps, res, interaction, notice ? { message: notice, status: 400 } : undefined);
  },
  submit: {
    path: 'mfa',
    async handle(deps: MachineDeps, req: Request, res: Response, interaction: Interaction) {
      const login = interaction.state.login!;
      const body = req.body as Record<string, unknown>;
      const code = String(body.code ?? '').slice(0, 64);
      const ip = req.ip ?? 'unknown';
      const enrolling = !(await deps.totp.factors.hasFactor(login.accountId));
      if (typeof body.credential === 'string' && body.credential && !enrolling) return passkeySubmitted(deps, res, interaction, body.credential, ip);
      if (typeof body.passkey_registration === 'string' && body.passkey_registration && enrolling) {
        const label = (typeof body.label === 'string' ? body.label.trim().slice(0, 64) : '') || 'Passkey';
        return passkeyEnrolled(deps, res, interaction, body.passkey_registration, label);
      }
      const factorId = interaction.state.mfaEnrolment;
      if (enrolling && !factorId) {
        await show(deps, res, interaction);
        return false;
      }
      const check = enrolling
        ? await checkTotpCode(deps.totp, { accountId: login.accountId, code, ip, factorId: factorId! })
        : await checkSecondFactor(deps.totp, { accountId: login.accountId, code, ip });
      if (check.outcome !== 'success') {
        deps.logger.warn({ uid: interaction.uid, account_id: login.accountId, outcome: check.outcome, reason: 'reason' in check ? check.reason : undefined }, 'second factor refused');
        if (check.outcome === 'throttled') res.set('retry-after', String(check.retryAfterSeconds));
        await show(deps, res, interaction, codeRefusal(check));
        return false;
      }
      login.secondFactor = check.method;
      if (mfaPolicy(interaction) === 'required') await deps.totp.factors.markRequired(login.accountId);
      login.result = { ...login.result, amr: [...new Set([...login.result.amr, ...(check.method === 'otp' ? ['otp'] : []), 'mfa'])] };
      delete interaction.state.mfaEnrolment;
      const requestId = (res.locals.requestId as string | undefined) ?? null;
      if (check.method === 'recovery') {
        await deps.linking.store.audit.record({ actor: `account:${login.accountId}`, action: 'use_recovery_code', resourceType: 'user', resourceId: login.accountId, before: null, after: null, requestId });
      }
      deps.logger.info({ uid: interaction.uid, account_id: login.accountId, method: check.method, enrolled: enrolling }, 'second factor passed');
      if (!enrolling) return true;
      // Enrolled during the login: the recovery codes are shown once, then the login goes on.
      const codes = await regenerateRecoveryCodes(deps.totp, login.accountId);
      await deps.linking.store.audit.record({ actor: `account:${login.accountId}`, action: 'enrol_factor', resourceType: 'user', resourceId: login.accountId, before: null, after: { factor_id: factorId, kind: 'totp' }, requestId });
      await deps.interactions.save(interaction);
      res.status(200).type('html').set('cache-control', 'no-store').send(
        deps.views.render('mfa/recovery-codes.njk', {
          codes,
          message: 'Your authenticator app is set up.',
          continue_url: `/interaction/${encodeURIComponent(interaction.uid)}`,
        }),
      );
      return false;
    },
  },
};
