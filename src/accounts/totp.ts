/**
 * TOTP second factors (RFC 6238, 30-second steps, 6 digits, SHA-1: what every authenticator app
 * reads from an `otpauth://` QR code): enrolment, verification with a ±1 step window where each
 * code is accepted once, and the ten single-use recovery codes. Failed codes are throttled by the
 * password sign-in's `LoginThrottle`, under keys of their own.
 */
import crypto from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';
import type { MfaFactor, MfaFactorRepository } from '../store/mfa-factors.ts';
import { LoginThrottle } from '../store/login-throttle.ts';

/** Seconds per TOTP time step. */
export const TOTP_PERIOD_SECONDS = 30;

/** How many recovery codes an account gets at a time. */
export const RECOVERY_CODE_COUNT = 10;

/** What the TOTP workflows need. */
export interface TotpDeps {
  factors: MfaFactorRepository;
  throttle: LoginThrottle;
  /** The name authenticator apps show beside the account (the issuer's host). */
  issuerName: string;
}

/** The outcome of a code check. */
export type CodeCheck =
  | { outcome: 'success'; method: 'otp' | 'recovery'; factor?: MfaFactor }
  | { outcome: 'failure'; reason: 'wrong' | 'replayed' | 'malformed' }
  | { outcome: 'throttled'; retryAfterSeconds: number };

/** The throttle keys of second-factor attempts on an account from an address (the password rules: per account, per account and address, per address). */
export function codeThrottleKeys(accountId: string, ip: string): string[] {
  return [`account:mfa:${accountId}`, `account-ip:mfa:${accountId}|${ip}`, `ip:${ip}`];
}

/** A TOTP enrolment as shown: the secret (base32, the manual key) and a QR code of its `otpauth://` URI as inline SVG. */
export interface TotpEnrolment {
  factorId: string;
  secret: string;
  qrSvg: string;
  uri: string;
}

/** Starts (or restarts) a TOTP enrolment for the account: a new pending factor and what the page shows. */
export async function startTotpEnrolment(deps: TotpDeps, account: { id: string; email: string | null }): Promise<TotpEnrolment> {
  const secret = generateSecret();
  const factor = await deps.factors.addPending(account.id, secret, 'Authenticator app');
  return enrolmentView(deps, account, factor.id, secret);
}

/** The page content of a pending enrolment, from its stored secret; undefined when it is no longer pending. */
export async function pendingEnrolment(deps: TotpDeps, account: { id: string; email: string | null }, factorId: string): Promise<TotpEnrolment | undefined> {
  const found = await deps.factors.getWithSecret(account.id, factorId);
  if (!found || found.factor.confirmedAt) return undefined;
  return enrolmentView(deps, account, factorId, found.secret);
}

async function enrolmentView(deps: TotpDeps, account: { id: string; email: string | null }, factorId: string, secret: string): Promise<TotpEnrolment> {
  const uri = generateURI({ issuer: deps.issuerName, label: account.email ?? account.id, secret, period: TOTP_PERIOD_SECONDS });
  const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { factorId, secret, qrSvg, uri };
}

const SIX_DIGITS = /^\d{6}$/;

/**
 * Checks a TOTP code against one factor (a pending one confirms its enrolment) or, without
 * `factorId`, every confirmed factor of the account. A code is accepted at most once: its time
 * step must be later than the last one accepted for the factor.
 */
export async function checkTotpCode(deps: TotpDeps, input: { accountId: string; code: string; ip: string; factorId?: string }): Promise<CodeCheck> {
  const keys = codeThrottleKeys(input.accountId, input.ip);
  const retryAfterSeconds = await deps.throttle.retryAfterSeconds(keys);
  if (retryAfterSeconds > 0) return { outcome: 'throttled', retryAfterSeconds };
  const code = input.code.replace(/\s+/g, '');
  if (!SIX_DIGITS.test(code)) {
    await deps.throttle.recordFailure(keys);
    return { outcome: 'failure', reason: 'malformed' };
  }
  const candidates = input.factorId ? [input.factorId] : (await deps.factors.list(input.accountId, { kind: 'totp' })).map((f) => f.id);
  let replayed = false;
  for (const factorId of candidates) {
    const found = await deps.factors.getWithSecret(input.accountId, factorId);
    if (!found) continue;
    const result = await verify({ secret: found.secret, token: code, period: TOTP_PERIOD_SECONDS, epochTolerance: TOTP_PERIOD_SECONDS });
    if (!result.valid || !('timeStep' in result)) continue;
    if (found.lastTimeStep !== null && result.timeStep <= found.lastTimeStep) {
      replayed = true;
      continue;
    }
    if (!(await deps.factors.useTimeStep(factorId, result.timeStep))) {
      replayed = true;
      continue;
    }
    await deps.throttle.reset(keys.filter((k) => !k.startsWith('ip:')));
    return { outcome: 'success', method: 'otp', factor: found.factor };
  }
  await deps.throttle.recordFailure(keys);
  return { outcome: 'failure', reason: replayed ? 'replayed' : 'wrong' };
}

/** Recovery codes are compared without case, spaces or dashes. */
const normaliseRecoveryCode = (code: string) => code.toLowerCase().replace(/[\s-]+/g, '');

/** Checks a recovery code: each works once; failures are throttled with the TOTP codes. */
export async function checkRecoveryCode(deps: TotpDeps, input: { accountId: string; code: string; ip: string }): Promise<CodeCheck> {
  const keys = codeThrottleKeys(input.accountId, input.ip);
  const retryAfterSeconds = await deps.throttle.retryAfterSeconds(keys);
  if (retryAfterSeconds > 0) return { outcome: 'throttled', retryAfterSeconds };
  if (await deps.factors.useRecoveryCode(input.accountId, normaliseRecoveryCode(input.code))) {
    await deps.throttle.reset(keys.filter((k) => !k.startsWith('ip:')));
    return { outcome: 'success', method: 'recovery' };
  }
  await deps.throttle.recordFailure(keys);
  return { outcome: 'failure', reason: 'wrong' };
}

/** A six-digit input is a TOTP code; anything else is tried as a recovery code. */
export function checkSecondFactor(deps: TotpDeps, input: { accountId: string; code: string; ip: string }): Promise<CodeCheck> {
  return SIX_DIGITS.test(input.code.replace(/\s+/g, '')) ? checkTotpCode(deps, input) : checkRecoveryCode(deps, input);
}

const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Ten new recovery codes (`xxxxx-xxxxx`, 50 bits each), replacing the account's old ones; the only time they exist in the clear. */
export async function regenerateRecoveryCodes(deps: Pick<TotpDeps, 'factors'>, accountId: string): Promise<string[]> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const chars = Array.from({ length: 10 }, () => RECOVERY_ALPHABET[crypto.randomInt(RECOVERY_ALPHABET.length)]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
  await deps.factors.replaceRecoveryCodes(accountId, codes.map(normaliseRecoveryCode));
  return codes;
}

/** The message a page shows for a refused code. */
export function codeRefusal(check: Exclude<CodeCheck, { outcome: 'success' }>): { message: string; status: number } {
  if (check.outcome === 'throttled') return { message: `Too many wrong codes. Try again in ${Math.ceil(check.retryAfterSeconds / 60)} minute(s).`, status: 429 };
  if (check.reason === 'replayed') return { message: 'That code was already used. Wait for the next code from your authenticator app and enter it.', status: 401 };
  return { message: 'That code is not right. Enter the current 6-digit code from your authenticator app, or one of your recovery codes.', status: 401 };
}
