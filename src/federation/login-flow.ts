/**
 * The protocol-neutral federated login: start a login upstream for an interaction, validate the
 * upstream's answer, and hand the identity to the interaction once the browser is back at it.
 * Routes call these; providers do the protocol; nothing here writes an HTTP response.
 */
import type { CallbackInput, LoginRequest, LoginStart } from '../../providers/types.ts';
import { ProviderError } from '../../providers/types.ts';
import { mapClaims } from '../accounts/claim-mapping.ts';
import { trustedEmail } from '../accounts/linking.ts';
import { RealmgateError, isRealmgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { homeRealmClient } from './home-realm.ts';
import { LoginTransactionStore, type CompletedIdentity, type CompletedTransaction, type LoginPurpose } from '../store/login-transactions.ts';
import type { ProviderCache, ReadyProvider } from './provider-cache.ts';

/** What the federated login needs. */
export interface FederationDeps {
  cache: ProviderCache;
  transactions: LoginTransactionStore;
  logger: Logger;
  metrics: Metrics;
}

/** The parts of an interaction a federated login reads. */
export interface InteractionSummary {
  uid: string;
  params: Record<string, unknown>;
  /** The engine's pending prompt: a federated login starts only at `login` (or `select_account`). */
  prompt: string;
}

/** Upstream errors that mean "the user said no": the application gets them as an OAuth error. */
const USER_REFUSALS = new Set(['access_denied']);

/** Runs `step`, counting provider failures (the error handler names the provider on the page). */
export async function countingFailures<T>(deps: Pick<FederationDeps, 'metrics'>, alias: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof ProviderError || isRealmgateError(error, 'provider_unknown')) {
      deps.metrics.logins.inc({ idp: alias, outcome: 'failure' });
    }
    throw error;
  }
}

/** The interaction's `max_age`, when the application sent one. */
function maxAgeOf(params: Record<string, unknown>): number | undefined {
  const value = Number(params.max_age);
  return params.max_age !== undefined && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/**
 * Starts a login at provider `alias` for an interaction at its login prompt: checks the client
 * may use the provider, opens it (cached by version), stores the sealed transaction bound to the
 * interaction and returns how to send the browser upstream.
 */
export async function startFederatedLogin(
  deps: FederationDeps,
  interaction: InteractionSummary,
  client: Record<string, unknown>,
  alias: string,
  options: { loginHint?: string | undefined; forceLogin?: boolean; anyProvider?: boolean } = {},
): Promise<LoginStart> {
  if (interaction.prompt !== 'login' && interaction.prompt !== 'select_account') {
    throw new RealmgateError('bad_request', { detail: `interaction ${interaction.uid} is at prompt ${interaction.prompt}, not login` });
  }
  const allowed = homeRealmClient(client).allowedProviders;
  if (!options.anyProvider && allowed && !allowed.includes(alias)) {
    throw new RealmgateError('provider_not_allowed', { alias, detail: `client ${String(client.client_id)} may not use provider ${alias}` });
  }
  const params = interaction.params;
  return beginUpstream(deps, { uid: interaction.uid, purpose: 'login' }, alias, {
    loginHint: options.loginHint ?? (typeof params.login_hint === 'string' ? params.login_hint : undefined),
    forceLogin: options.forceLogin === true || String(params.prompt ?? '').split(' ').includes('login'),
    maxAgeSeconds: maxAgeOf(params),
  });
}

/**
 * Starts a login at provider `alias` from the account page of the engine session `sessionUid`:
 * a fresh sign-in whose identity, on return, is added to that session's account.
 */
export async function startAccountLink(deps: FederationDeps, sessionUid: string, alias: string): Promise<LoginStart> {
  return beginUpstream(deps, { uid: sessionUid, purpose: 'link' }, alias, { forceLogin: true });
}

async function beginUpstream(deps: FederationDeps, owner: { uid: string; purpose: LoginPurpose }, alias: string, request: Omit<LoginRequest, 'transactionId'>): Promise<LoginStart> {
  return countingFailures(deps, alias, async () => {
    const provider = await deps.cache.get(alias);
    const transactionId = LoginTransactionStore.newId();
    const start = await provider.opened.startLogin({ transactionId, ...request });
    await deps.transactions.save(transactionId, { kind: 'upstream', alias, uid: owner.uid, purpose: owner.purpose, data: start.transaction });
    deps.logger.info({ alias, version: provider.version, uid: owner.uid, purpose: owner.purpose }, 'federated login started');
    return start;
  });
}

/**
 * Handles the upstream's answer at `/federation/<alias>/...`: takes the login transaction (once),
 * lets the provider validate the answer, and hands the outcome over to the interaction (sealed in
 * the URL, or stored when large). Returns the interaction URL the browser goes to next; nothing
 * is signed in until it gets there, in the browser that holds that interaction's cookie.
 */
export async function acceptUpstreamAnswer(deps: FederationDeps, alias: string, transactionId: string | undefined, input: CallbackInput): Promise<string> {
  return countingFailures(deps, alias, async () => {
    const provider = await deps.cache.get(alias);
    const taken = await deps.transactions.take(transactionId ?? '', 'upstream', alias);
    if (!taken.ok) {
      throw new ProviderError('transaction_invalid', { alias, detail: `login transaction ${taken.reason} (state ${JSON.stringify(transactionId?.slice(0, 8) ?? null)}…)` });
    }
    const { uid, data, purpose } = taken.transaction;
    const outcome = await validate(provider, input, data);
    const completion = encodeURIComponent(await deps.transactions.handOver({ kind: 'completed', alias, uid, purpose, outcome }));
    return purpose === 'link'
      ? `/account/linked/${encodeURIComponent(alias)}/${completion}`
      : `/interaction/${encodeURIComponent(uid)}/federated/${encodeURIComponent(alias)}/${completion}`;
  });
}

async function validate(provider: ReadyProvider, input: CallbackInput, data: Record<string, unknown>) {
  try {
    const identity = await provider.opened.finishLogin(input, data);
    const profile = mapClaims(identity.claims, provider.claimMappings, { email: identity.email, emailVerified: identity.emailVerified });
    // Released as verified only when the provider's email_trust covers the address.
    profile.emailVerified = trustedEmail(profile.email, profile.emailVerified, { emailTrust: provider.linkingPolicy.emailTrust, domains: provider.domains });
    // A field the upstream sends only sometimes is left out when absent, so the account keeps it.
    for (const field of identity.keepWhenAbsent ?? []) if (profile[field] === null) delete (profile as Partial<typeof profile>)[field];
    const completed: CompletedIdentity = {
      subject: identity.subject,
      profile,
      claims: identity.claims,
      amr: ['fed', ...(identity.amr ?? []).filter((m) => m !== 'fed')],
      upstreamSession: identity.upstreamSession,
      linkingPolicy: provider.linkingPolicy,
      ...(provider.requireLocalMfa ? { requireLocalMfa: true } : {}),
    };
    return { type: 'identity' as const, identity: completed };
  } catch (error) {
    if (error instanceof ProviderError && error.code === 'upstream_error' && error.upstreamError && USER_REFUSALS.has(error.upstreamError)) {
      return { type: 'error' as const, error: error.upstreamError, description: `The sign-in was cancelled or refused at ${provider.displayName}.` };
    }
    throw error;
  }
}

/**
 * Takes the completed login the browser came back with to interaction `uid` (a stored one once:
 * taking it deletes it). It must belong to that interaction and provider; the identity it holds is mapped
 * and its email judged under the provider's `email_trust`, ready for the interaction machine.
 */
export async function takeCompletedLogin(
  deps: Pick<FederationDeps, 'transactions' | 'cache' | 'metrics'>,
  uid: string,
  alias: string,
  completionId: string,
  purpose: LoginPurpose = 'login',
): Promise<CompletedTransaction['outcome']> {
  const taken = await deps.transactions.takeCompleted(completionId, alias);
  if (!taken.ok || taken.transaction.uid !== uid || (taken.transaction.purpose ?? 'login') !== purpose) {
    throw new ProviderError('transaction_invalid', { alias, detail: `completed login ${taken.ok ? 'belongs to another interaction' : taken.reason}` });
  }
  if (taken.transaction.outcome.type === 'error') deps.metrics.logins.inc({ idp: alias, outcome: 'refused' });
  return taken.transaction.outcome;
}
