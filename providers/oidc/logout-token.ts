/**
 * Validation of an upstream's logout token, per OpenID Connect Back-Channel Logout 1.0 §2.6:
 * signature with an allowed algorithm against the upstream's JWKS (refetched on an unknown `kid`),
 * `iss`, `aud`, `iat` within a window (some IdPs send no `exp`; a token is accepted within the
 * window either way), the back-channel logout event, `sid` and/or `sub`, no `nonce`, and `jti`
 * used once across every node.
 */
import crypto from 'node:crypto';
import * as jose from 'jose';
import { ProviderError, type ReplayStore, type UpstreamLogoutMatch } from '../types.ts';

/** The event member a logout token must carry. */
const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** How far `iat` may lie from now (either way); also how long a `jti` is remembered. */
export const LOGOUT_TOKEN_WINDOW_SECONDS = 300;

/** What checking a logout token needs from the opened provider. */
export interface LogoutTokenExpectations {
  alias: string;
  issuer: string;
  clientId: string;
  algorithms: string[];
  jwks: jose.JWTVerifyGetKey;
  replay: ReplayStore;
}

const invalid = (alias: string, detail: string, cause?: unknown) => new ProviderError('response_invalid', { alias, detail: `logout token: ${detail}`, cause });

/** Validates `token` in full and returns which sessions it ends. */
export async function verifyLogoutToken(token: string, expected: LogoutTokenExpectations): Promise<UpstreamLogoutMatch> {
  let payload: jose.JWTPayload;
  try {
    ({ payload } = await jose.jwtVerify(token, expected.jwks, {
      issuer: expected.issuer,
      audience: expected.clientId,
      algorithms: expected.algorithms,
      requiredClaims: ['iat', 'jti'],
      maxTokenAge: LOGOUT_TOKEN_WINDOW_SECONDS,
      clockTolerance: 30,
    }));
  } catch (cause) {
    throw invalid(expected.alias, (cause as Error).message, cause);
  }
  const nowSeconds = Math.floor(Date.now() / 1000);
  if (typeof payload.iat !== 'number' || payload.iat > nowSeconds + LOGOUT_TOKEN_WINDOW_SECONDS) throw invalid(expected.alias, 'iat lies in the future');
  const events = payload.events as Record<string, unknown> | undefined;
  const event = events && typeof events === 'object' ? events[BACKCHANNEL_LOGOUT_EVENT] : undefined;
  if (!event || typeof event !== 'object' || Array.isArray(event)) throw invalid(expected.alias, `events lacks ${BACKCHANNEL_LOGOUT_EVENT}`);
  if ('nonce' in payload) throw invalid(expected.alias, 'a logout token must not carry a nonce');
  const sid = typeof payload.sid === 'string' && payload.sid ? payload.sid : undefined;
  const sub = typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined;
  if (!sid && !sub) throw invalid(expected.alias, 'neither sid nor sub');
  if (typeof payload.jti !== 'string' || !payload.jti) throw invalid(expected.alias, 'jti missing');
  const key = `oidc-logout:${crypto.createHash('sha256').update(`${expected.issuer}\n${payload.jti}`).digest('base64url')}`;
  const rememberUntil = new Date((Math.max(payload.iat, nowSeconds) + LOGOUT_TOKEN_WINDOW_SECONDS + 60) * 1000);
  if (!(await expected.replay.rememberOnce(key, rememberUntil))) {
    throw new ProviderError('replayed', { alias: expected.alias, detail: `logout token jti ${payload.jti} was already used` });
  }
  return { issuer: expected.issuer, sessionId: sid, subject: sub };
}
