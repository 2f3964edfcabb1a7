/**
 * Sign in with Apple's two peculiarities: the client secret is a short-lived ES256 JWT signed with
 * the developer's key (team id as `iss`, client id as `sub`, Apple as `aud`), and the person's
 * name arrives only once, on the first authorization, as an unsigned `user` form field.
 */
import crypto from 'node:crypto';
import * as jose from 'jose';
import { APPLE_ISSUER } from './presets.ts';

/** How long a client secret Realmgate signs for Apple is valid (Apple allows up to six months). */
export const APPLE_CLIENT_SECRET_TTL_SECONDS = 300;

/** Why `private_key` is not a usable Apple key, or undefined when it is one (PKCS#8 PEM, EC P-256). */
export function applePrivateKeyProblem(pem: string): string | undefined {
  try {
    const key = crypto.createPrivateKey(pem.trim());
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return 'must be an EC P-256 key (the .p8 file Apple issues)';
    return undefined;
  } catch (error) {
    return `cannot be read as a PKCS#8 PEM private key (${(error as Error).message})`;
  }
}

/** Signs the client secret JWT Apple's token endpoint expects. */
export async function appleClientSecret(input: { pem: string; teamId: string; keyId: string; clientId: string }): Promise<string> {
  const key = await jose.importPKCS8(input.pem.trim(), 'ES256');
  return new jose.SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: input.keyId })
    .setIssuer(input.teamId)
    .setSubject(input.clientId)
    .setAudience(APPLE_ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${APPLE_CLIENT_SECRET_TTL_SECONDS}s`)
    .sign(key);
}

/**
 * The name claims of Apple's first-login `user` field (`{"name":{"firstName","lastName"}}`), or
 * none. The field is unsigned: only the name is read from it, never the email.
 */
export function appleFirstLoginName(user: string | undefined): { name?: string; given_name?: string; family_name?: string } {
  if (!user) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(user);
  } catch {
    return {};
  }
  const name = (parsed as { name?: { firstName?: unknown; lastName?: unknown } } | null)?.name;
  const given = typeof name?.firstName === 'string' && name.firstName.trim() ? name.firstName.trim().slice(0, 200) : undefined;
  const family = typeof name?.lastName === 'string' && name.lastName.trim() ? name.lastName.trim().slice(0, 200) : undefined;
  const full = [given, family].filter(Boolean).join(' ');
  return { ...(given ? { given_name: given } : {}), ...(family ? { family_name: family } : {}), ...(full ? { name: full } : {}) };
}
