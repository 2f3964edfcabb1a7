import type { Knex } from 'knex';
import { RealmgateError } from '../errors.ts';
import type { Account, AccountRepository } from './accounts.ts';
import type { MappedProfile } from './claim-mapping.ts';
import type { ExternalIdentityRepository } from './external-identities.ts';

/** An upstream identity after claim mapping, ready to sign in. */
export interface FederatedIdentity {
  providerAlias: string;
  subject: string;
  profile: MappedProfile;
  /** The upstream claims as received, kept with the link. */
  upstreamClaims: Record<string, unknown>;
}

/** What a federated sign-in did. */
export interface FederatedSignIn {
  account: Account;
  /** True when the account was provisioned just now. */
  created: boolean;
}

/**
 * Signs an upstream identity in: an existing link `(alias, subject)` signs in its account, else a
 * new account is provisioned just in time and linked, in one transaction. Accounts never link by
 * email on their own (an upstream cannot take over an account by claiming its address). The
 * profile of an account without a password follows its upstream at every sign-in.
 */
export async function signInFederated(
  deps: { db: Knex; accounts: AccountRepository; identities: ExternalIdentityRepository },
  identity: FederatedIdentity,
): Promise<FederatedSignIn> {
  const attempt = () =>
    deps.db.transaction(async (trx): Promise<FederatedSignIn> => {
      const link = await deps.identities.findForUpdate(identity.providerAlias, identity.subject, trx);
      if (link) {
        const account = await deps.accounts.get(link.accountId, trx);
        if (!account) throw new Error(`external identity ${identity.providerAlias}/${identity.subject} points at a missing account`);
        if (account.disabled) {
          throw new RealmgateError('account_disabled', {
            status: 403,
            detail: `account ${account.id} is disabled`,
            safeMessage: 'This account is disabled. Contact your administrator.',
          });
        }
        await deps.identities.recordLogin(identity.providerAlias, identity.subject, { email: identity.profile.email, claims: identity.upstreamClaims }, trx);
        const updated = account.hasPassword ? account : ((await deps.accounts.update(account.id, identity.profile, trx)) ?? account);
        return { account: updated, created: false };
      }
      const account = await deps.accounts.create(identity.profile, trx);
      await deps.identities.link(
        { providerAlias: identity.providerAlias, subject: identity.subject, accountId: account.id, email: identity.profile.email, claims: identity.upstreamClaims },
        trx,
      );
      return { account, created: true };
    });
  let result: FederatedSignIn;
  try {
    result = await attempt();
  } catch (error) {
    // Two first sign-ins of one subject raced: the other one linked it; use its link.
    if ((error as { code?: string }).code !== '23505') throw error;
    result = await attempt();
  }
  await deps.accounts.touchLogin(result.account.id);
  return result;
}
