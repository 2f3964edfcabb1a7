/**
 * The interaction state machine. Sign-in methods (password, a federated identity) feed it an
 * authenticated method; it decides the account under the provider's linking policy, then walks
 * the steps (`STEPS`, data) until none is pending, and finishes the login. Nothing here writes an
 * HTTP response except through a step's page or the interaction service.
 */
import type { Request, Response } from 'express';
import { linkIdentity, resolveFederatedIdentity, type FederatedIdentity, type LinkingDeps } from '../accounts/linking.ts';
import type { Account, AccountRepository } from '../store/accounts.ts';
import type { TermsAcceptanceRepository } from '../store/terms-acceptances.ts';
import type { LoginSessionRepository } from '../store/login-sessions.ts';
import { STEPS_PENDING_REASON } from './steps/account-steps.ts';
import type { CompletedIdentity } from '../store/login-transactions.ts';
import { RealmgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Views } from './views.ts';
import type { CsrfTokens } from './csrf.ts';
import type { DecidedLogin, Interaction, InteractionService } from './service.ts';
import { linkConfirmationStep } from './steps/link-confirmation.ts';
import { profileStep } from './steps/profile-completion.ts';
import { termsStep } from './steps/terms.ts';
import { mfaStep } from './steps/mfa.ts';
import type { TotpDeps } from '../accounts/totp.ts';
import type { WebauthnDeps } from '../accounts/webauthn.ts';

/** A sign-in method that succeeded in this interaction. */
export type AuthenticatedMethod =
  | { type: 'password'; account: Account }
  /** A passwordless sign-in with a discoverable passkey that verified the user (`hwk` or `swk`). */
  | { type: 'passkey'; account: Account; method: 'hwk' | 'swk' }
  | { type: 'federated'; alias: string; displayName: string; identity: CompletedIdentity };

/** What the machine and its steps need. */
export interface MachineDeps {
  interactions: InteractionService;
  accounts: AccountRepository;
  termsAcceptances: TermsAcceptanceRepository;
  /** How each engine session signed in (to carry a signed-in session through pending steps). */
  loginSessions: Pick<LoginSessionRepository, 'get'>;
  linking: LinkingDeps;
  /** Second factors (TOTP, recovery codes) and their throttle. */
  totp: TotpDeps;
  /** Passkeys: as a second factor, and passwordless from the login page. */
  webauthn: WebauthnDeps;
  views: Views;
  csrf: CsrfTokens;
  logger: Logger;
  metrics: Metrics;
  /** A provider's display name, for pages (the alias when it is not known). */
  displayName(alias: string): string;
  /** Display names of several providers, read from the store (for pages naming providers this node has not opened). */
  displayNames(aliases: readonly string[]): Promise<Record<string, string>>;
}

/** A step of the interaction: pending or not for this interaction, and the page that resolves it. */
export interface InteractionStep {
  /** Stable name, recorded in `state.completed` once done. */
  readonly name: string;
  /** True when the login cannot finish before this step (it may read the decided account). */
  pending(deps: MachineDeps, interaction: Interaction): boolean | Promise<boolean>;
  /** Shows the step's page; `notice` is an error to show with it (status 400 then). */
  render(deps: MachineDeps, res: Response, interaction: Interaction, notice?: string): void | Promise<void>;
  /**
   * The form post that resolves the step, at `POST /interaction/:uid/<path>`: the route checks the
   * CSRF token and that this step is the pending one, then calls `handle`. True: the step is
   * resolved and the machine moves on; false: `handle` answered (the page again, with errors).
   */
  readonly submit?: { readonly path: string; handle(deps: MachineDeps, req: Request, res: Response, interaction: Interaction): Promise<boolean> };
}

/**
 * The steps in the order the machine walks them. Each says for itself whether it is pending, so a
 * new step slots in here without touching the others. The second factor comes first after the
 * sign-in: nothing is recorded for a person who has not proved who they are. Terms come before
 * profile completion: nothing is asked of a person who has not accepted the terms the data is
 * collected under.
 */
export const STEPS: readonly InteractionStep[] = [linkConfirmationStep, mfaStep, termsStep, profileStep];

/** The first step still pending for this interaction, if any. */
export async function pendingStep(deps: MachineDeps, interaction: Interaction): Promise<InteractionStep | undefined> {
  for (const step of STEPS) if (await step.pending(deps, interaction)) return step;
  return undefined;
}

const federatedLogin = (method: Extract<AuthenticatedMethod, { type: 'federated' }>, accountId: string): DecidedLogin => ({
  accountId,
  result: { idp: method.alias, amr: method.identity.amr, upstream: method.identity.upstreamSession },
  ...(method.identity.requireLocalMfa ? { requireLocalMfa: true } : {}),
});

const asFederatedIdentity = (alias: string, identity: CompletedIdentity): FederatedIdentity => ({
  providerAlias: alias,
  subject: identity.subject,
  profile: identity.profile,
  upstreamClaims: identity.claims,
});

/**
 * Feeds an authenticated method to the machine. While a link confirmation is pending, the
 * method must sign in to the account the pending identity matched: then the identity is linked
 * and the original login finishes into that account. Otherwise the method decides the account
 * (under the provider's linking policy for a federated one) and the machine moves on.
 */
export async function authenticated(deps: MachineDeps, req: Request, res: Response, interaction: Interaction, method: AuthenticatedMethod): Promise<void> {
  if (interaction.state.pendingLink) return confirmLink(deps, req, res, interaction, method);
  if (method.type === 'password') {
    interaction.state.login = { accountId: method.account.id, result: { idp: 'local', amr: ['pwd'] } };
    return advance(deps, req, res, interaction);
  }
  if (method.type === 'passkey') {
    // A user-verified passkey is possession and a PIN or biometric at once: multi-factor by itself.
    interaction.state.login = { accountId: method.account.id, result: { idp: 'local', amr: [method.method, 'mfa'] }, secondFactor: 'passkey' };
    return advance(deps, req, res, interaction);
  }
  const { alias, identity } = method;
  const decision = await resolveFederatedIdentity(deps.linking, asFederatedIdentity(alias, identity), identity.linkingPolicy);
  if (decision.type === 'refused') {
    deps.metrics.logins.inc({ idp: alias, outcome: 'refused' });
    throw new RealmgateError('account_not_provisioned', {
      alias,
      params: { provider: method.displayName },
      detail: `${alias}/${identity.subject} is not linked to an account and provider ${alias} only signs in existing accounts`,
    });
  }
  if (decision.type === 'confirm') {
    const aliases = [alias, ...decision.methods.flatMap((m) => (m.kind === 'provider' ? [m.alias] : []))];
    interaction.state.pendingLink = {
      alias,
      identity,
      accountId: decision.account.id,
      accountEmail: decision.account.email ?? '',
      methods: decision.methods,
      displayNames: await deps.displayNames(aliases),
    };
    deps.logger.info({ alias, uid: interaction.uid, account_id: decision.account.id }, 'federated sign-in matched an existing account; link confirmation asked');
    return advance(deps, req, res, interaction);
  }
  deps.metrics.logins.inc({ idp: alias, outcome: 'success' });
  deps.logger.info({ alias, account_id: decision.account.id, rule: decision.rule, uid: interaction.uid }, 'federated sign-in');
  interaction.state.login = federatedLogin(method, decision.account.id);
  return advance(deps, req, res, interaction);
}

/**
 * The person proved (or failed to prove) they own the account a pending identity matched. The
 * pending identity is taken once: a second confirmation of the same link finds nothing.
 */
async function confirmLink(deps: MachineDeps, req: Request, res: Response, interaction: Interaction, method: AuthenticatedMethod): Promise<void> {
  const pending = interaction.state.pendingLink!;
  const provedAccount = await accountOf(deps, method);
  if (provedAccount !== pending.accountId) {
    deps.logger.warn({ uid: interaction.uid, expected: pending.accountId, proved: provedAccount ?? null }, 'link confirmation signed in to another account');
    return linkConfirmationStep.render(deps, res, interaction, 'That sign-in is not the account shown here. Sign in with one of the methods below, or cancel.');
  }
  const taken = await deps.interactions.takePendingLink(interaction);
  if (!taken) throw new RealmgateError('interaction_expired', { detail: 'the pending link was already used' });
  await linkIdentity(deps.linking, taken.accountId, asFederatedIdentity(taken.alias, taken.identity), { actor: `account:${taken.accountId}` }, 'confirm');
  deps.metrics.logins.inc({ idp: taken.alias, outcome: 'success' });
  deps.logger.info({ alias: taken.alias, account_id: taken.accountId, uid: interaction.uid, rule: 'confirm' }, 'identity linked after confirmation');
  interaction.state.login = {
    accountId: taken.accountId,
    result: { idp: taken.alias, amr: taken.identity.amr, upstream: taken.identity.upstreamSession },
    ...(taken.identity.requireLocalMfa ? { requireLocalMfa: true } : {}),
  };
  return advance(deps, req, res, interaction);
}

/** The account a method signs in to: the password's account, or the one a federated identity is linked to (never provisioned here). */
async function accountOf(deps: MachineDeps, method: AuthenticatedMethod): Promise<string | undefined> {
  if (method.type !== 'federated') return method.account.id;
  const link = await deps.linking.store.identities.find(method.alias, method.identity.subject);
  return link?.accountId;
}

/**
 * A browser already signed in reaches a client whose steps (terms, required claims) its account
 * has not done: the engine asks for a login for that reason alone. The signed-in session is then
 * the decided login (its account, and how it signed in), and the steps run for it without asking
 * the person to sign in again, and the session's `auth_time` is kept (unless a second factor is
 * passed here). With any other reason (no session, max_age, a hint naming someone else) nothing
 * is adopted and the person signs in.
 */
export async function adoptSignedInSession(deps: MachineDeps, interaction: Interaction): Promise<void> {
  if (interaction.state.login || interaction.state.pendingLink) return;
  const { reasons } = interaction.details.prompt;
  const session = interaction.details.session;
  if (reasons.length !== 1 || reasons[0] !== STEPS_PENDING_REASON || !session?.accountId || !session.uid) return;
  const login = await deps.loginSessions.get(session.uid);
  if (!login || login.accountId !== session.accountId) return;
  const authTime = await deps.interactions.sessionAuthTime(session.uid);
  interaction.state.login = { accountId: login.accountId, result: { idp: login.idp, amr: login.amr, upstream: login.upstream }, authTime };
  deps.logger.info({ uid: interaction.uid, account_id: login.accountId }, 'signed-in session taken through the client\'s pending steps');
  await deps.interactions.save(interaction);
}

/**
 * Walks the steps: the first pending one is shown (its state saved first, so any node can take
 * it up); with none pending and an account decided, the login finishes.
 */
export async function advance(deps: MachineDeps, req: Request, res: Response, interaction: Interaction): Promise<void> {
  const step = await pendingStep(deps, interaction);
  if (step) {
    await deps.interactions.save(interaction);
    return void res.redirect(303, `/interaction/${encodeURIComponent(interaction.uid)}`);
  }
  if (!interaction.state.login) throw new RealmgateError('interaction_expired', { detail: 'no sign-in to finish for this interaction' });
  await deps.interactions.finishLogin(req, res, interaction, interaction.state.login);
}
