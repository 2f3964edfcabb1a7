import type { Logger } from '../logger.ts';
import type { TokenEngine } from './engine.ts';

/** What ending a session did: its account, and the applications told over the back channel. */
export interface EndedSession {
  accountId: string | undefined;
  /** client_ids that acknowledged the logout token. */
  notified: string[];
  /** client_ids whose back-channel logout endpoint failed (logged). */
  failed: string[];
}

/** The part of oidc-provider's Client model this uses (`backchannelLogout` is untyped upstream). */
interface LogoutClient {
  clientId: string;
  backchannelLogoutUri?: string | undefined;
  backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
}

/**
 * Ends an engine session by uid the way RP-initiated logout does, without a browser: every
 * application of the session with a back-channel logout URI receives a logout token, the grants
 * that do not outlive logout (no `offline_access`) are revoked with their tokens, and the session
 * is destroyed. Undefined when no such session exists.
 */
export async function endEngineSession(engine: TokenEngine, sessionUid: string, logger: Logger): Promise<EndedSession | undefined> {
  const provider = engine.provider;
  const session = await provider.Session.findByUid(sessionUid);
  if (!session) return undefined;
  const ended: EndedSession = { accountId: session.accountId, notified: [], failed: [] };

  await Promise.all(
    Object.keys(session.authorizations ?? {}).map(async (clientId) => {
      const client = (await provider.Client.find(clientId)) as unknown as LogoutClient | undefined;
      if (client?.backchannelLogoutUri && session.accountId) {
        try {
          await client.backchannelLogout(session.accountId, session.sidFor(clientId));
          ended.notified.push(clientId);
        } catch (err) {
          ended.failed.push(clientId);
          logger.warn({ err, client_id: clientId, session_uid: sessionUid }, 'back-channel logout delivery failed');
        }
      }
      const grantId = session.grantIdFor(clientId);
      if (grantId && !session.authorizationFor(clientId).persistsLogout) {
        await Promise.all([
          provider.AccessToken.revokeByGrantId(grantId),
          provider.RefreshToken.revokeByGrantId(grantId),
          provider.AuthorizationCode.revokeByGrantId(grantId),
        ]);
        await (await provider.Grant.find(grantId))?.destroy();
      }
    }),
  );
  await session.destroy();
  return ended;
}
