/** Lifetimes of what the token engine issues, in seconds. */
export const TTL = {
  /** Access tokens for users (opaque or JWT). */
  accessToken: 3600,
  /** Access tokens from client_credentials. */
  clientCredentials: 600,
  /** Authorization codes. */
  authorizationCode: 60,
  /** ID tokens. */
  idToken: 3600,
  /** Refresh tokens (rotated on every use). */
  refreshToken: 14 * 24 * 3600,
  /** A login or consent in progress. */
  interaction: 3600,
  /** A browser session at Realmgate. */
  session: 14 * 24 * 3600,
  /** A grant (the consent a user gave a client). */
  grant: 14 * 24 * 3600,
} as const;

/** The longest access-token lifetime a resource server may ask for. */
export const MAX_RESOURCE_TOKEN_TTL_SECONDS = 24 * 3600;

/** How long a retired signing key stays published: longer than anything it signed lives. */
export const KEY_RETENTION_SECONDS =
  Math.max(TTL.accessToken, TTL.idToken, TTL.clientCredentials, MAX_RESOURCE_TOKEN_TTL_SECONDS) + 3600;
