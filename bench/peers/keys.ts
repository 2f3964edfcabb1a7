/** Signing keys of the bench's in-memory peers. */
import crypto from 'node:crypto';
import * as jose from 'jose';

/** A fresh ES256 private JWK with a `kid`, for an oidc-provider `jwks`. */
export async function es256Jwk(): Promise<jose.JWK & { kid: string }> {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid: crypto.randomUUID(), alg: 'ES256', use: 'sig' };
}
