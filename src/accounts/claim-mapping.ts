/**
 * Per-provider claim mapping: `claim_mappings` maps an upstream claim (key) to a local claim
 * (value), e.g. `{ "mail": "email", "realm_access.roles": "groups", "department": "department" }`.
 * Standard OpenID Connect claims map to themselves unless a mapping names the same local claim.
 */
import type { Account } from '../store/accounts.ts';

/** The mapping every provider starts from: upstream claim → local claim. */
export const DEFAULT_CLAIM_MAPPINGS: Readonly<Record<string, string>> = Object.freeze({
  email: 'email',
  email_verified: 'email_verified',
  name: 'name',
  given_name: 'given_name',
  family_name: 'family_name',
  groups: 'groups',
});

/** Local claims a mapping may not produce: they identify the token, the session or the login. */
const RESERVED_LOCAL_CLAIMS = new Set(['sub', 'idp', 'amr', 'acr', 'sid', 'iss', 'aud', 'azp', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'auth_time', 'at_hash', 'c_hash']);

const CLAIM_NAME = /^[A-Za-z_][\w.:/-]{0,254}$/;

/** One invalid mapping, named `claim_mappings.<upstream claim>`. */
export interface MappingProblem {
  field: string;
  message: string;
}

/** Validates `claim_mappings`, every problem at once (the admin API calls this on write). */
export function checkClaimMappings(mappings: unknown): MappingProblem[] {
  if (mappings === undefined) return [];
  if (!mappings || typeof mappings !== 'object' || Array.isArray(mappings)) {
    return [{ field: 'claim_mappings', message: 'must be an object mapping upstream claim names to local claim names' }];
  }
  const problems: MappingProblem[] = [];
  const targets = new Map<string, string>();
  for (const [upstream, local] of Object.entries(mappings)) {
    const field = `claim_mappings.${upstream}`;
    if (!upstream || upstream.length > 255) problems.push({ field, message: 'upstream claim name must be 1-255 characters' });
    if (typeof local !== 'string' || !CLAIM_NAME.test(local)) {
      problems.push({ field, message: 'must be a local claim name (letters, digits, _ . : / -)' });
      continue;
    }
    if (RESERVED_LOCAL_CLAIMS.has(local)) problems.push({ field, message: `cannot set ${local}: Realmgate sets it` });
    if (targets.has(local)) problems.push({ field, message: `maps to ${local}, as claim_mappings.${targets.get(local)} already does` });
    targets.set(local, upstream);
  }
  return problems;
}

/** The local profile of an upstream identity after mapping; `claims` holds `groups` and custom claims. */
export type MappedProfile = Pick<Account, 'email' | 'emailVerified' | 'name' | 'givenName' | 'familyName' | 'claims'>;

/** Reads an upstream claim by exact name, else by dotted path into nested objects (`realm_access.roles`). */
function readClaim(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let value: unknown = claims;
  for (const part of name.split('.')) {
    if (!value || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() ? v.trim().slice(0, 1024) : typeof v === 'number' ? String(v) : null);
const flag = (v: unknown): boolean => v === true || v === 'true';
const list = (v: unknown): string[] | undefined =>
  Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string') : typeof v === 'string' ? [v] : undefined;

/**
 * Maps upstream claims to a local profile: explicit mappings first; a default applies only to a
 * local claim no explicit mapping targets. `fallback` fills email fields the provider normalised
 * itself (a SAML NameID in email format, say) when no claim gave them.
 */
export function mapClaims(
  upstream: Record<string, unknown>,
  mappings: Record<string, string>,
  fallback: { email?: string | undefined; emailVerified?: boolean | undefined } = {},
): MappedProfile {
  const explicitTargets = new Set(Object.values(mappings));
  const effective: [string, string][] = [
    ...Object.entries(DEFAULT_CLAIM_MAPPINGS).filter(([, local]) => !explicitTargets.has(local)),
    ...Object.entries(mappings),
  ];
  const local: Record<string, unknown> = {};
  for (const [from, to] of effective) {
    if (RESERVED_LOCAL_CLAIMS.has(to)) continue;
    const value = readClaim(upstream, from);
    if (value !== undefined && value !== null) local[to] = value;
  }
  const { email, email_verified, name, given_name, family_name, groups, ...custom } = local;
  const mappedEmail = text(email);
  const profile: MappedProfile = {
    email: mappedEmail ?? text(fallback.email),
    // Without an email_verified claim (SAML), the provider's own word on the address it normalised counts.
    emailVerified: mappedEmail
      ? email_verified !== undefined ? flag(email_verified) : mappedEmail === text(fallback.email) && Boolean(fallback.emailVerified)
      : Boolean(fallback.emailVerified),
    name: text(name),
    givenName: text(given_name),
    familyName: text(family_name),
    claims: { ...custom },
  };
  const groupList = list(groups);
  if (groupList) profile.claims.groups = groupList;
  return profile;
}
