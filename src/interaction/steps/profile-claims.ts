/**
 * The claims a client may require (`required_claims`) and the profile completion step asks for:
 * how each is labelled and typed on the page, where it is stored on the account, and how it is
 * checked. The standard ones live in account columns; the others in the account's claims.
 */
import { z } from 'zod';
import type { Account, NewAccount } from '../../store/accounts.ts';

/** One claim the profile completion step can ask for. */
export interface ProfileClaim {
  label: string;
  /** The input's type and autocomplete token (HTML autofill). */
  inputType: 'text' | 'email';
  autocomplete: string;
  /** The claim's value as the account holds it (undefined or empty when missing). */
  read(account: Account): unknown;
  /** The account change that stores `value`. */
  write(account: Account, value: string): NewAccount;
  /** Checks a typed value; the value to store, or a sentence saying what is wrong. */
  check(value: string): { value: string } | { problem: string };
}

const text = (label: string, maxLength: number) => (value: string) => {
  const trimmed = value.trim();
  if (!trimmed) return { problem: `Enter your ${label.toLowerCase()}.` };
  if (trimmed.length > maxLength) return { problem: `Your ${label.toLowerCase()} can be at most ${maxLength} characters.` };
  // Control characters never belong in a name and would break mail headers and logs.
  if (/\p{Cc}/u.test(trimmed)) return { problem: `Your ${label.toLowerCase()} contains characters that are not allowed.` };
  return { value: trimmed };
};

const emailCheck = z.email().max(320);

const inClaims = (name: string, label: string, autocomplete: string): ProfileClaim => ({
  label,
  inputType: 'text',
  autocomplete,
  read: (account) => account.claims[name],
  write: (account, value) => ({ claims: { ...account.claims, [name]: value } }),
  check: text(label, 200),
});

/** Every claim `required_claims` may name, in the order the page asks for them. */
export const PROFILE_CLAIMS = {
  given_name: { label: 'First name', inputType: 'text', autocomplete: 'given-name', read: (a) => a.givenName, write: (_a, v) => ({ givenName: v }), check: text('First name', 200) },
  family_name: { label: 'Last name', inputType: 'text', autocomplete: 'family-name', read: (a) => a.familyName, write: (_a, v) => ({ familyName: v }), check: text('Last name', 200) },
  name: { label: 'Full name', inputType: 'text', autocomplete: 'name', read: (a) => a.name, write: (_a, v) => ({ name: v }), check: text('Full name', 200) },
  middle_name: inClaims('middle_name', 'Middle name', 'additional-name'),
  nickname: inClaims('nickname', 'Nickname', 'nickname'),
  email: {
    label: 'Email',
    inputType: 'email',
    autocomplete: 'email',
    read: (a) => a.email,
    // A typed address is not verified: tokens say `email_verified: false` until it is.
    write: (_a, v) => ({ email: v, emailVerified: false }),
    check: (value) => (emailCheck.safeParse(value.trim()).success ? { value: value.trim() } : { problem: 'Enter an email address, like name@example.com.' }),
  },
} satisfies Record<string, ProfileClaim>;

/** A claim name `required_claims` may hold. */
export type ProfileClaimName = keyof typeof PROFILE_CLAIMS;

/** The names `required_claims` accepts. */
export const PROFILE_CLAIM_NAMES = Object.keys(PROFILE_CLAIMS) as ProfileClaimName[];

/** True when `name` is a claim the profile step can ask for. */
export function isProfileClaim(name: unknown): name is ProfileClaimName {
  return typeof name === 'string' && Object.hasOwn(PROFILE_CLAIMS, name);
}

/** The client's required claims the account does not have yet, in the page's order. */
export function missingClaims(client: Record<string, unknown>, account: Account): ProfileClaimName[] {
  const required = Array.isArray(client.required_claims) ? client.required_claims.filter(isProfileClaim) : [];
  return PROFILE_CLAIM_NAMES.filter((name) => {
    if (!required.includes(name)) return false;
    const value = PROFILE_CLAIMS[name].read(account);
    return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
  });
}
