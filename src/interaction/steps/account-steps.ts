import type { AccountRepository } from '../../store/accounts.ts';
import type { TermsAcceptanceRepository } from '../../store/terms-acceptances.ts';
import type { MfaFactorRepository } from '../../store/mfa-factors.ts';
import { mfaPolicy } from './mfa.ts';
import { missingClaims } from './profile-claims.ts';
import { clientTerms } from './terms.ts';

/**
 * The reason the token engine's login prompt gives when a browser already signed in to an account
 * that has not done what this client asks (its terms, its required claims, a second factor): the interaction then
 * walks those steps for the signed-in account instead of asking it to sign in again.
 */
export const STEPS_PENDING_REASON = 'realmgate_steps_pending';

/**
 * True when a session that signed in locally (`login`: its idp and amr) without a second factor
 * reaches a client whose MFA policy asks this account for one (`required`, `acr_values=mfa`, or
 * `if_enrolled` with a factor): the interaction then asks for the code without a new sign-in.
 * Federated sessions are left alone here (their provider's `require_local_mfa` was applied at
 * sign-in).
 */
export async function secondFactorPending(
  deps: { mfaFactors: Pick<MfaFactorRepository, 'hasFactor'> },
  interaction: { client: Record<string, unknown>; params: Record<string, unknown> },
  accountId: string,
  login: { idp: string; amr: readonly string[] } | undefined,
): Promise<boolean> {
  if (!login || login.idp !== 'local' || login.amr.includes('mfa')) return false;
  const policy = mfaPolicy(interaction);
  if (policy === 'off') return false;
  return policy === 'required' || (await deps.mfaFactors.hasFactor(accountId));
}

/**
 * True when `client` asks `accountId` for a step it has not done: terms it has not accepted in
 * this version, or required claims it lacks. Clients asking for neither cost no query.
 */
export async function accountStepsPending(
  deps: { accounts: Pick<AccountRepository, 'get'>; termsAcceptances: Pick<TermsAcceptanceRepository, 'hasAccepted'> },
  client: Record<string, unknown>,
  accountId: string,
): Promise<boolean> {
  const terms = clientTerms(client);
  const required = Array.isArray(client.required_claims) && client.required_claims.length > 0;
  if (!terms && !required) return false;
  if (terms && !(await deps.termsAcceptances.hasAccepted(accountId, terms.termsUri, terms.termsVersion))) return true;
  if (!required) return false;
  const account = await deps.accounts.get(accountId);
  return account !== undefined && !account.disabled && missingClaims(client, account).length > 0;
}
