/**
 * The protocol-neutral federated login: start a login upstream for an interaction, validate the
 * upstream's answer, and sign the identity in once the browser is back at its interaction.
 * Routes call these; providers do the protocol; nothing here writes an HTTP response.
 */
import type { Knex } from 'knex';
import type { CallbackInput, LoginStart } from '../../providers/types.ts';
import { ProviderError } from '../../providers/types.ts';
import type { AccountRepository } from '../accounts/accounts.ts';
import { mapClaims } from '../accounts/claim-mapping.ts';
import type { ExternalIdentityRepository } from '../accounts/external-identities.ts';
import { signInFederated } from '../accounts/federated-login.ts';
import { RealmgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RealmgateLoginResult, TokenEngine } from '../token-server/engine.ts';
import { homeRealmClient } from './home-realm.ts';
import { LoginTransactionStore, type CompletedIdentity } from './login-transactions.ts';
import { federationPageError } from './page-errors.ts';
import type { ProviderCache, ReadyProvider } from './provider-cache.ts';

/** What the federated login needs. */
export interface FederationDeps {
  engine: TokenEngine;
  cache: ProviderCache;
  transactions: LoginTransactionStore;
  db: Knex;
  accounts: AccountRepository;
  identities: ExternalIdentityRepository;
  logger: Logger;
  metrics: Metrics;
}

/** The parts of an interaction a federated login reads. */
export interface InteractionSummary {
  uid: string;
  params: Record<string, unknown>;
  prompt: { name: string };
}

/** Upstream errors that mean "the user said no": the application gets them as an OAuth error. */
const USER_REFUSALS = new Set(['access_denied']);

/** Runs `step`, counting provider failures and turning them into the error page's RealmgateError. */
export async function asPage<T>(deps: Pick<FederationDeps, 'metrics' | 'cache'>, alias: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof ProviderError || (error as { code?: string }).code === 'provider_unknown') {
      deps.metrics.logins.inc({ idp: alias, outcome: 'failure' });
    }
    throw federationPageError(error, deps.cache.displayName(alias));
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
  options: { loginHint?: string | undefined } = {},
): Promise<LoginStart> {
  if (interaction.prompt.name !== 'login') {
    throw new RealmgateError('bad_request', { detail: `interaction ${interaction.uid} is at prompt ${interaction.prompt.name}, not login` });
  }
  const allowed = homeRealmClient(client).allowedProviders;
  if (allowed && !allowed.includes(alias)) {
    throw new RealmgateError('provider_not_allowed', {
      status: 403,
      detail: `client ${String(client.client_id)} may not use provider ${alias}`,
      safeMessage: 'This application does not allow that sign-in provider. Go back to the application and start again.',
    });
  }
  return asPage(deps, alias, async () => {
    const provider = await deps.cache.get(alias);
    const transactionId = LoginTransactionStore.newId();
    const params = interaction.params;
    const loginHint = options.loginHint ?? (typeof params.login_hint === 'string' ? params.login_hint : undefined);
    const start = await provider.opened.startLogin({
      transactionId,
      loginHint,
      forceLogin: String(params.prompt ?? '').split(' ').includes('login'),
      maxAgeSeconds: maxAgeOf(params),
    });
    await deps.transactions.save(transactionId, { kind: 'upstream', alias, uid: interaction.uid, data: start.transaction });
    deps.logger.info({ alias, version: provider.version, uid: interaction.uid }, 'federated login started');
    return start;
  });
}

/**
 * Handles the upstream's answer at `/federation/<alias>/...`: takes the login transaction (once),
 * lets the provider validate the answer, and stores the outcome for the interaction. Returns
 * the interaction URL the browser goes to next; nothing is signed in until it gets there.
 */
export async function acceptUpstreamAnswer(deps: FederationDeps, alias: string, transactionId: string | undefined, input: CallbackInput): Promise<string> {
  return asPage(deps, alias, async () => {
    const provider = await deps.cache.get(alias);
    const taken = await deps.transactions.take(transactionId ?? '', 'upstream', alias);
    if (!taken.ok) {
      throw new ProviderError('transaction_invalid', { alias, detail: `login transaction ${taken.reason} (state ${JSON.stringify(transactionId?.slice(0, 8) ?? null)}…)` });
    }
    const { uid, data } = taken.transaction;
    const outcome = await validate(provider, input, data);
    const completionId = LoginTransactionStore.newId();
    await deps.transactions.save(completionId, { kind: 'completed', alias, uid, outcome });
    return `/interaction/${encodeURIComponent(uid)}/federated/${encodeURIComponent(alias)}/${completionId}`;
  });
}

async function validate(provider: ReadyProvider, input: CallbackInput, data: Record<string, unknown>) {
  try {
    const identity = await provider.opened.finishLogin(input, data);
    const completed: CompletedIdentity = {
      subject: identity.subject,
      profile: mapClaims(identity.claims, provider.claimMappings, { email: identity.email, emailVerified: identity.emailVerified }),
      claims: identity.claims,
      amr: ['fed', ...(identity.amr ?? []).filter((m) => m !== 'fed')],
      upstreamSession: identity.upstreamSession,
    };
    return { type: 'identity' as const, identity: completed };
  } catch (error) {
    if (error instanceof ProviderError && error.code === 'upstream_error' && error.upstreamError && USER_REFUSALS.has(error.upstreamError)) {
      return { type: 'error' as const, error: error.upstreamError, description: `The sign-in was cancelled or refused at ${provider.displayName}.` };
    }
    throw error;
  }
}

/** What finishing a completed federated login resolved to. */
export type FederatedOutcome =
  | { type: 'login'; accountId: string; result: RealmgateLoginResult; created: boolean }
  | { type: 'error'; error: string; description: string };

/**
 * Takes the completed transaction for the interaction the browser came back to and signs the
 * identity in: its linked account, or a new one provisioned and linked just in time.
 */
export async function resolveFederatedLogin(deps: FederationDeps, uid: string, alias: string, completionId: string): Promise<FederatedOutcome> {
  const taken = await deps.transactions.take(completionId, 'completed', alias);
  if (!taken.ok || taken.transaction.uid !== uid) {
    throw federationPageError(
      new ProviderError('transaction_invalid', { alias, detail: `completed login ${taken.ok ? 'belongs to another interaction' : taken.reason}` }),
      deps.cache.displayName(alias),
    );
  }
  const { outcome } = taken.transaction;
  if (outcome.type === 'error') {
    deps.metrics.logins.inc({ idp: alias, outcome: 'refused' });
    return outcome;
  }
  const { identity } = outcome;
  const { account, created } = await signInFederated(deps, {
    providerAlias: alias,
    subject: identity.subject,
    profile: identity.profile,
    upstreamClaims: identity.claims,
  });
  deps.metrics.logins.inc({ idp: alias, outcome: 'success' });
  deps.logger.info({ alias, account_id: account.id, created, uid }, created ? 'federated login provisioned an account' : 'federated login');
  return {
    type: 'login',
    accountId: account.id,
    created,
    result: {
      idp: alias,
      amr: identity.amr,
      upstream: identity.upstreamSession,
    },
  };
}
