/**
 * Where logout meets oidc-provider. The engine sends back-channel logout tokens itself, once, and
 * forgets a failure; Realmgate replaces that with its outbox. Ending a Session (RP-initiated
 * logout, a change of account) goes through `endSession`, which deletes it and queues every notice
 * in one transaction. When the user signs out of one application only (on the confirmation page,
 * "stay signed in"), the engine ends that application's part and asks its Client model to deliver:
 * that delivery goes through `endApplicationSession` instead. oidc-provider has no hook for either,
 * so both are set on the models of each provider instance the engine builds. Both write the
 * engine's rows outside its adapter, so they first flush the request's held engine writes.
 */
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { flushPayloadWrites } from '../store/payload-batch.ts';
import type { Store } from '../store/store.ts';
import { endApplicationSession, endSession, type EndingSession } from './session-end.ts';

interface SessionModel extends EndingSession {
  destroyed?: boolean;
}

/** The request oidc-provider is handling (its async-local context), when there is one. */
function currentRequest(): KoaContextWithOIDC | undefined {
  return (Provider as unknown as { ctx?: KoaContextWithOIDC }).ctx;
}

/** Routes the engine's session ending and back-channel logout through the outbox. */
export function routeEngineLogoutThroughOutbox(provider: Provider, deps: { store: Store }): void {
  const clientPrototype = provider.Client.prototype as unknown as { backchannelLogout(sub: string, sid: string | undefined): Promise<void> };
  clientPrototype.backchannelLogout = async function backchannelLogout(this: { clientId: string }, sub: string): Promise<void> {
    const oidc = currentRequest()?.oidc;
    // Signing out of everything: the notice was queued with every other when the session ended (below).
    if (oidc?.route !== 'end_session_confirm' || oidc.params?.logout) return;
    // Signing out of this application only: the session stays; this application's part ends now.
    const session = oidc.session as unknown as EndingSession | undefined;
    if (!session?.uid) return;
    // The session's held save lands before its application's part is cut from the stored row.
    await flushPayloadWrites();
    await endApplicationSession(deps.store, { sessionUid: session.uid, accountId: sub, clientId: this.clientId, authorization: session.authorizations?.[this.clientId] }, 'rp_logout');
  };
  const sessionPrototype = provider.Session.prototype as unknown as { destroy(): Promise<void> };
  sessionPrototype.destroy = async function destroy(this: SessionModel): Promise<void> {
    // What this request saved so far lands first: ending the session must be the last word on its rows.
    await flushPayloadWrites();
    await endSession(deps.store, { uid: this.uid, accountId: this.accountId, authorizations: this.authorizations }, 'rp_logout');
    this.destroyed = true;
  };
}

/**
 * The Session time-to-live oidc-provider asks for on every save: the inactivity timeout, but
 * never past the session's lifetime counted from sign-in (the session is saved on each request
 * it makes, so inactivity restarts the clock and the lifetime caps it).
 */
export function sessionTtl(options: { lifetimeSeconds: number; idleTimeoutSeconds: number }) {
  return (_ctx: KoaContextWithOIDC, session: { loginTs?: number | undefined }): number => {
    if (!session.loginTs) return options.idleTimeoutSeconds;
    const left = session.loginTs + options.lifetimeSeconds - Math.floor(Date.now() / 1000);
    return Math.max(1, Math.min(options.idleTimeoutSeconds, left));
  };
}
