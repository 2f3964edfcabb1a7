/**
 * WebAuthn / passkeys (with @simplewebauthn/server): registering a passkey from the account page,
 * and checking an assertion, as the second factor of a login or as a passwordless sign-in with a
 * discoverable credential (user verification required). The relying party is the issuer: `rpID`
 * is its host name and the only accepted origin is its origin. Every challenge is stored, bound to
 * what asked for it and taken once before the answer is checked, so a replayed or transplanted
 * answer finds nothing; failed assertions are throttled with the TOTP codes, under the same keys.
 */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { Account } from '../store/accounts.ts';
import type { LoginThrottle } from '../store/login-throttle.ts';
import type { MfaFactor } from '../store/mfa-factors.ts';
import type { ChallengePurpose, WebauthnChallengeRepository } from '../store/webauthn-challenges.ts';
import type { WebauthnCredentialRepository } from '../store/webauthn-credentials.ts';
import { codeThrottleKeys } from './totp.ts';

/** COSE algorithms accepted for new passkeys: EdDSA, ES256, RS256. */
const ALGORITHMS = [-8, -7, -257];

/** How long the browser may take over a ceremony, in milliseconds. */
const CEREMONY_TIMEOUT_MS = 5 * 60 * 1000;

/** The relying party: who the passkeys are for. */
export interface RelyingParty {
  /** The issuer's host name (no port): the scope every passkey is created for. */
  id: string;
  /** The issuer's origin: the only origin an answer may come from. */
  origin: string;
  /** The name authenticators show (the issuer's host). */
  name: string;
}

/** The relying party of an issuer URL. */
export function relyingPartyOf(issuer: string): RelyingParty {
  const url = new URL(issuer);
  return { id: url.hostname, origin: url.origin, name: url.host };
}

/** What the passkey workflows need. */
export interface WebauthnDeps {
  rp: RelyingParty;
  credentials: WebauthnCredentialRepository;
  challenges: WebauthnChallengeRepository;
  throttle: LoginThrottle;
}

/** The `amr` value a passkey earns: `swk` when it is synced (backed up or multi-device), `hwk` when bound to one device. */
export const passkeyAmr = (info: { deviceType: string; backedUp: boolean }): 'hwk' | 'swk' => (info.deviceType === 'multiDevice' || info.backedUp ? 'swk' : 'hwk');

/** The binding of an account page session's registration challenges. */
export const accountSessionBinding = (sessionUid: string) => `account:${sessionUid}`;

const b64url = z.string().max(8192).regex(/^[A-Za-z0-9_-]*$/);
const credentialShape = {
  id: b64url.min(1),
  rawId: b64url.min(1),
  type: z.literal('public-key'),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
};
const registrationSchema = z.object({
  ...credentialShape,
  response: z.object({
    clientDataJSON: b64url,
    attestationObject: b64url,
    transports: z.array(z.string().max(32)).max(10).optional(),
  }).passthrough(),
});
const authenticationSchema = z.object({
  ...credentialShape,
  response: z.object({ clientDataJSON: b64url, authenticatorData: b64url, signature: b64url, userHandle: b64url.optional() }),
});

/** The challenge the browser says it answered (from `clientDataJSON`), or undefined when unreadable. */
function answeredChallenge(clientDataJSON: string): string | undefined {
  try {
    const data = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof data.challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(data.challenge) ? data.challenge : undefined;
  } catch {
    return undefined;
  }
}

function parseJson<T>(schema: z.ZodType<T>, body: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Options for `navigator.credentials.create()` to register a passkey on the account; the
 * challenge is bound to `binding`: the account page session (`accountSessionBinding`), or the
 * interaction uid when a login under `mfa: "required"` enrols its first factor.
 */
export async function startPasskeyRegistration(deps: WebauthnDeps, account: Account, binding: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const existing = await deps.credentials.forAccount(account.id);
  const challenge = await deps.challenges.issue('register', binding, account.id);
  return generateRegistrationOptions({
    rpName: deps.rp.name,
    rpID: deps.rp.id,
    userName: account.email ?? account.id,
    userDisplayName: account.name ?? account.email ?? '',
    userID: new Uint8Array(Buffer.from(account.id, 'utf8')),
    challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: 'none',
    excludeCredentials: existing.map((c) => ({ id: c.credentialId, transports: c.transports })),
    authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
    supportedAlgorithmIDs: ALGORITHMS,
  });
}

/** Why a registration was refused. */
export type RegistrationRefusal = 'malformed' | 'challenge' | 'invalid' | 'duplicate';

/** Checks the browser's answer to a registration (its challenge issued for `binding`) and stores the passkey; each challenge is answered once. */
export async function finishPasskeyRegistration(
  deps: WebauthnDeps,
  input: { account: Account; binding: string; credential: string; label: string },
): Promise<{ outcome: 'success'; factor: MfaFactor } | { outcome: 'failure'; reason: RegistrationRefusal; detail?: string }> {
  const response = parseJson(registrationSchema, input.credential) as RegistrationResponseJSON | undefined;
  const challenge = response && answeredChallenge(response.response.clientDataJSON);
  if (!response || !challenge) return { outcome: 'failure', reason: 'malformed' };
  if (!(await deps.challenges.take(challenge, 'register', input.binding, input.account.id))) return { outcome: 'failure', reason: 'challenge' };
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: deps.rp.origin,
      expectedRPID: deps.rp.id,
      requireUserVerification: false,
      supportedAlgorithmIDs: ALGORITHMS,
    });
  } catch (error) {
    return { outcome: 'failure', reason: 'invalid', detail: (error as Error).message };
  }
  if (!verified.verified) return { outcome: 'failure', reason: 'invalid' };
  const info = verified.registrationInfo;
  const factor = await deps.credentials.add(input.account.id, input.label, {
    credentialId: info.credential.id,
    publicKey: info.credential.publicKey,
    signCount: info.credential.counter,
    transports: response.response.transports ?? [],
    backedUp: info.credentialBackedUp,
    deviceType: info.credentialDeviceType,
  });
  if (!factor) return { outcome: 'failure', reason: 'duplicate' };
  return { outcome: 'success', factor };
}

/**
 * Options for `navigator.credentials.get()` for this interaction: as a second factor, the
 * account's passkeys; passwordless, none listed (a discoverable credential names its account)
 * and user verification required.
 */
export async function startPasskeyAssertion(
  deps: WebauthnDeps,
  input: { purpose: Extract<ChallengePurpose, 'second_factor' | 'passwordless'>; interactionUid: string; accountId?: string },
): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const allowed = input.purpose === 'second_factor' ? await deps.credentials.forAccount(input.accountId!) : [];
  const challenge = await deps.challenges.issue(input.purpose, input.interactionUid, input.purpose === 'second_factor' ? input.accountId! : null);
  return generateAuthenticationOptions({
    rpID: deps.rp.id,
    challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification: input.purpose === 'passwordless' ? 'required' : 'preferred',
    allowCredentials: allowed.map((c) => ({ id: c.credentialId, transports: c.transports })),
  });
}

/** Why an assertion was refused. */
export type AssertionRefusal = 'malformed' | 'unknown_credential' | 'challenge' | 'user_handle' | 'invalid' | 'counter' | 'replayed';

/** The outcome of an assertion check. */
export type PasskeyCheck =
  | { outcome: 'success'; factor: MfaFactor; accountId: string; method: 'hwk' | 'swk' }
  | { outcome: 'failure'; reason: AssertionRefusal; detail?: string }
  | { outcome: 'throttled'; retryAfterSeconds: number };

/**
 * Checks a passkey assertion posted for this interaction. As a second factor the credential must
 * be one of `accountId`'s; passwordless, it decides the account (its user handle must name it)
 * and the authenticator must have verified the user. The challenge is taken before the check (an
 * answer is tried once), the counter must move forward unless the authenticator keeps none, and
 * moving it is a compare-and-set.
 */
export async function checkPasskeyAssertion(
  deps: WebauthnDeps,
  input: { purpose: Extract<ChallengePurpose, 'second_factor' | 'passwordless'>; interactionUid: string; accountId?: string; credential: string; ip: string },
): Promise<PasskeyCheck> {
  const response = parseJson(authenticationSchema, input.credential) as AuthenticationResponseJSON | undefined;
  const stored = response ? await deps.credentials.find(response.id) : undefined;
  const accountId = input.purpose === 'second_factor' ? input.accountId! : stored?.factor.accountId;
  const keys = accountId ? codeThrottleKeys(accountId, input.ip) : [`ip:${input.ip}`];
  const retryAfterSeconds = await deps.throttle.retryAfterSeconds(keys);
  if (retryAfterSeconds > 0) return { outcome: 'throttled', retryAfterSeconds };
  const refuse = async (reason: AssertionRefusal, detail?: string): Promise<PasskeyCheck> => {
    await deps.throttle.recordFailure(keys);
    return { outcome: 'failure', reason, ...(detail ? { detail } : {}) };
  };
  const challenge = response && answeredChallenge(response.response.clientDataJSON);
  if (!response || !challenge) return refuse('malformed');
  if (!stored || stored.factor.accountId !== accountId) return refuse('unknown_credential');
  if (!(await deps.challenges.take(challenge, input.purpose, input.interactionUid, input.purpose === 'second_factor' ? accountId : null))) return refuse('challenge');
  if (input.purpose === 'passwordless' && response.response.userHandle !== Buffer.from(accountId, 'utf8').toString('base64url')) return refuse('user_handle');
  let verified;
  try {
    verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: deps.rp.origin,
      expectedRPID: deps.rp.id,
      credential: { id: stored.credentialId, publicKey: stored.publicKey, counter: stored.signCount, transports: stored.transports },
      requireUserVerification: input.purpose === 'passwordless',
    });
  } catch (error) {
    const message = (error as Error).message;
    return refuse(/counter/i.test(message) ? 'counter' : 'invalid', message);
  }
  if (!verified.verified) return refuse('invalid');
  const info = verified.authenticationInfo;
  if (!(await deps.credentials.recordUse(stored.factor.id, stored.signCount, info.newCounter, info.credentialBackedUp))) return refuse('replayed');
  await deps.throttle.reset(keys.filter((k) => !k.startsWith('ip:')));
  return { outcome: 'success', factor: stored.factor, accountId, method: passkeyAmr({ deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp }) };
}

/** The message a page shows for a refused assertion. */
export function passkeyRefusal(check: Exclude<PasskeyCheck, { outcome: 'success' }>): { message: string; status: number } {
  if (check.outcome === 'throttled') return { message: `Too many failed attempts. Try again in ${Math.ceil(check.retryAfterSeconds / 60)} minute(s).`, status: 429 };
  if (check.reason === 'unknown_credential') return { message: 'That passkey is not registered for this account. Try another passkey or another way to sign in.', status: 401 };
  if (check.reason === 'challenge' || check.reason === 'replayed') return { message: 'That passkey answer was for another sign-in or was already used. Try again.', status: 401 };
  return { message: 'The passkey could not be checked. Try again, or use another way to sign in.', status: 401 };
}
