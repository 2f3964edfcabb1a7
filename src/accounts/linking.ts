/**
 * Account linking: how an upstream identity meets local accounts. One person may sign in with a
 * password and several providers and always reach one account (one `sub`). Whether a first sign-in
 * links, asks, creates or refuses is the provider's linking policy; an email that is not trusted
 * never links by itself, under any policy.
 */
import type { EmailTrust, LinkingPolicy } from '../../providers/types.ts';
import { RealmgateError } from '../errors.ts';
import type { Account, NewAccount } from '../store/accounts.ts';
import type { Store, StoreTransaction } from '../store/store.ts';
import type { MappedProfile } from './claim-mapping.ts';

/** What linking needs: the store (accounts, links, audit log) and its unit of work. */
export interface LinkingDeps {
  store: Pick<Store, 'accounts' | 'identities' | 'audit' | 'transaction'>;
}

/** An upstream identity after claim mapping, its email already judged by `trustedEmail`. */
export interface FederatedIdentity {
  providerAlias: string;
  subject: string;
  profile: MappedProfile;
  /** The upstream claims as received, kept with the link. */
  upstreamClaims: Record<string, unknown>;
}

/** One way to sign in to an account: its password, or a linked provider identity. */
export type SignInMethod = { kind: 'local' } | { kind: 'provider'; alias: string; subject: string };

/** Who made a link or unlink, for the audit log: the policy, the person, or an administrator. */
export interface LinkActor {
  actor: string;
  requestId?: string | null | undefined;
}

/** The rules that make a link, recorded in the audit log with it. */
export type LinkRule = 'trusted_email' | 'confirm' | 'self_service' | 'admin';

/**
 * Whether an upstream's email counts as verified: the upstream must say it verified the address,
 * and the provider's `email_trust` must cover it (`domains`: the address is in one of the
 * provider's own domains; `any`: every address; `none`: never).
 */
export function trustedEmail(email: string | null | undefined, upstreamVerified: boolean, provider: { emailTrust: EmailTrust; domains: readonly string[] }): boolean {
  if (!email || !upstreamVerified) return false;
  if (provider.emailTrust === 'any') return true;
  if (provider.emailTrust === 'none') return false;
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  return provider.domains.includes(domain);
}

/** What a federated sign-in resolved to, with the rule that decided it. */
export type FederatedDecision =
  | { type: 'account'; account: Account; rule: 'existing_link' | 'trusted_email' | 'provisioned' }
  | { type: 'confirm'; account: Account; methods: SignInMethod[] }
  | { type: 'refused'; reason: 'existing_only' };

const disabledError = (account: Account) =>
  new RealmgateError('account_disabled', { detail: `account ${account.id} is disabled` });

/**
 * The profile refresh of an account from its only upstream: what the upstream sends wins, and
 * what it does not send (a null field, a claim it left out) keeps the account's value, which the
 * person may have given on the profile completion step.
 */
function upstreamRefresh(account: Account, profile: FederatedIdentity['profile']): NewAccount {
  return {
    ...(profile.email !== null ? { email: profile.email, emailVerified: profile.emailVerified } : {}),
    ...(profile.name !== null ? { name: profile.name } : {}),
    ...(profile.givenName !== null ? { givenName: profile.givenName } : {}),
    ...(profile.familyName !== null ? { familyName: profile.familyName } : {}),
    claims: { ...account.claims, ...profile.claims },
  };
}

/**
 * Resolves an upstream identity to an account under its provider's policy, in one transaction:
 * an existing link signs in its account (whose profile follows the upstream when it has no
 * password); else an account with the same email is linked at once (`trusted_email`, trusted email
 * only) or offered for confirmation (`confirm`); else a new account is provisioned (`auto`) or the
 * sign-in refused (`existing_only`). Two first sign-ins of one subject at once yield one account.
 */
export async function resolveFederatedIdentity(deps: LinkingDeps, identity: FederatedIdentity, policy: LinkingPolicy): Promise<FederatedDecision> {
  const returning = await signInReturningIdentity(deps, identity);
  if (returning) return returning;
  const attempt = () =>
    deps.store.transaction(async (tx): Promise<FederatedDecision> => {
      const link = await tx.identities.findForUpdate(identity.providerAlias, identity.subject);
      if (link) {
        const account = await tx.accounts.get(link.accountId);
        if (!account) throw new Error(`external identity ${identity.providerAlias}/${identity.subject} points at a missing account`);
        if (account.disabled) throw disabledError(account);
        await tx.identities.recordLogin(identity.providerAlias, identity.subject, { email: identity.profile.email, claims: identity.upstreamClaims });
        // The profile follows the upstream only when it changed, and only for an account this identity alone signs in to.
        const refresh = upstreamRefresh(account, identity.profile);
        const follows = !account.hasPassword && profileChanges(account, refresh) && (await signInMethods(tx, account)).length <= 1;
        const updated = follows ? ((await tx.accounts.update(account.id, refresh)) ?? account) : account;
        return { type: 'account', account: updated, rule: 'existing_link' };
      }
      const existing = policy.linking !== 'none' && identity.profile.email ? await linkCandidate(tx, identity.profile.email) : undefined;
      if (existing && policy.linking === 'trusted_email' && identity.profile.emailVerified) {
        if (existing.disabled) throw disabledError(existing);
        await addLink(tx, existing.id, identity, { actor: 'policy' }, 'trusted_email');
        return { type: 'account', account: existing, rule: 'trusted_email' };
      }
      if (existing && !existing.disabled) {
        return { type: 'confirm', account: existing, methods: await signInMethods(tx, existing) };
      }
      if (policy.provisioning === 'existing_only') return { type: 'refused', reason: 'existing_only' };
      const account = await tx.accounts.create(identity.profile);
      await tx.identities.link({ providerAlias: identity.providerAlias, subject: identity.subject, accountId: account.id, email: identity.profile.email, claims: identity.upstreamClaims });
      return { type: 'account', account, rule: 'provisioned' };
    });
  try {
    return await attempt();
  } catch (error) {
    // Two first sign-ins of one subject raced: the other one linked it; use its link.
    if ((error as { code?: string }).code !== '23505') throw error;
    return attempt();
  }
}

/**
 * The common case without a transaction: an identity already linked to an enabled account whose
 * profile it would not change. One statement finds the account and records the sign-in on the
 * link; anything else returns undefined for the transaction to decide (which records the sign-in
 * again, with the same values, when the profile follows the upstream).
 */
async function signInReturningIdentity(deps: LinkingDeps, identity: FederatedIdentity): Promise<FederatedDecision | undefined> {
  const found = await deps.store.accounts.getByIdentityRecordingLogin(identity.providerAlias, identity.subject, { email: identity.profile.email, claims: identity.upstreamClaims });
  if (!found) return undefined;
  const { account, recorded } = found;
  if (account.disabled) throw disabledError(account);
  if (!account.hasPassword && profileChanges(account, upstreamRefresh(account, identity.profile))) return undefined;
  return recorded ? { type: 'account', account, rule: 'existing_link' } : undefined;
}

/** JSON with object keys sorted (a jsonb column does not keep the order they were written in). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** True when writing `profile` would change a field of `account` (fields the profile leaves out do not count). */
function profileChanges(account: Account, profile: NewAccount): boolean {
  const differs = <T>(next: T | undefined, current: T) => next !== undefined && canonical(next) !== canonical(current);
  return (
    differs(profile.email, account.email) ||
    differs(profile.emailVerified, account.emailVerified) ||
    differs(profile.name, account.name) ||
    differs(profile.givenName, account.givenName) ||
    differs(profile.familyName, account.familyName) ||
    differs(profile.claims, account.claims)
  );
}

/** The account an identity with this email may be linked to: the password account, else the oldest with that verified email. */
async function linkCandidate(tx: StoreTransaction, email: string): Promise<Account | undefined> {
  const matches = await tx.accounts.findVerifiedByEmail(email);
  return matches.find((a) => a.hasPassword) ?? matches[0];
}

/** Every way to sign in to an account: its password first, then its linked identities by alias. */
export async function signInMethods(repositories: Pick<StoreTransaction, 'identities'>, account: Account): Promise<SignInMethod[]> {
  const links = await repositories.identities.listForAccount(account.id);
  return [...(account.hasPassword ? [{ kind: 'local' } as const] : []), ...links.map((l) => ({ kind: 'provider' as const, alias: l.providerAlias, subject: l.subject }))];
}

async function addLink(tx: StoreTransaction, accountId: string, identity: FederatedIdentity, by: LinkActor, rule: LinkRule): Promise<void> {
  await tx.identities.link({ providerAlias: identity.providerAlias, subject: identity.subject, accountId, email: identity.profile.email, claims: identity.upstreamClaims });
  await tx.audit.record({
    actor: by.actor,
    action: 'link',
    resourceType: 'user',
    resourceId: accountId,
    before: null,
    after: { provider: identity.providerAlias, subject: identity.subject, rule },
    requestId: by.requestId ?? null,
  });
}

/** The 409 for an identity to link that already signs in another account. */
function identityTaken(alias: string, subject: string): RealmgateError {
  return new RealmgateError('identity_taken', {
    alias,
    errors: [{ field: 'subject', message: 'is linked to another account' }],
    detail: `identity ${alias}/${subject} is already linked to another account`,
  });
}

/**
 * Links an identity to an account (after the person proved ownership, from their account page,
 * or by an administrator) and audits it with `rule`. Linking an identity the account already has
 * changes nothing; one linked to another account throws `identity_taken`.
 */
export async function linkIdentity(deps: LinkingDeps, accountId: string, identity: FederatedIdentity, by: LinkActor, rule: LinkRule): Promise<'linked' | 'unchanged'> {
  const run = () =>
    deps.store.transaction(async (tx) => {
      const link = await tx.identities.findForUpdate(identity.providerAlias, identity.subject);
      if (link?.accountId === accountId) return 'unchanged' as const;
      if (link) throw identityTaken(identity.providerAlias, identity.subject);
      if (!(await tx.accounts.getForUpdate(accountId))) throw new RealmgateError('not_found', { params: { what: 'user', id: accountId }, detail: `account ${accountId} does not exist` });
      await addLink(tx, accountId, identity, by, rule);
      return 'linked' as const;
    });
  try {
    return await run();
  } catch (error) {
    if ((error as { code?: string }).code !== '23505') throw error;
    return run();
  }
}

/**
 * Removes a linked identity from an account, audited; the account row is locked so two unlinks at
 * once cannot remove its last two methods. Throws `last_sign_in_method` (409) for the last method;
 * false when no such link exists.
 */
export async function unlinkIdentity(deps: LinkingDeps, accountId: string, alias: string, subject: string, by: LinkActor): Promise<boolean> {
  return deps.store.transaction(async (tx) => {
    const account = await tx.accounts.getForUpdate(accountId);
    if (!account) return false;
    const links = await tx.identities.listForAccountForUpdate(accountId);
    if (!links.some((l) => l.providerAlias === alias && l.subject === subject)) return false;
    if (links.length + (account.hasPassword ? 1 : 0) <= 1) throw new RealmgateError('last_sign_in_method', { detail: `account ${accountId} has no other sign-in method` });
    await tx.identities.unlink(accountId, alias, subject);
    await tx.audit.record({ actor: by.actor, action: 'unlink', resourceType: 'user', resourceId: accountId, before: { provider: alias, subject }, after: null, requestId: by.requestId ?? null });
    return true;
  });
}
