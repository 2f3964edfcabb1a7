import { z } from 'zod';
import type { Account } from '../store/accounts.ts';
import type { LinkedIdentity } from '../store/external-identities.ts';
import type { TermsAcceptance } from '../store/terms-acceptances.ts';
import { isJsonObject } from './merge-patch.ts';
import { type FieldProblem, zodProblems } from './problems.ts';

/** The shortest password an administrator may set (the CLI's rule too). */
export const MIN_PASSWORD_LENGTH = 8;
/** The longest password accepted: hashing is deliberately slow, so length is bounded. */
export const MAX_PASSWORD_LENGTH = 1024;

/** Read-only fields of the user representation: sent back from a read, they are refused with a clear message. */
const READ_ONLY = ['id', 'password_set', 'created_at', 'last_login_at', 'claims', 'identities', 'terms_accepted', 'factors', 'recovery_codes_left'] as const;

/** A local account as the admin API shows it; `password_set` says whether it has a password, never the hash. */
export function userJson(account: Account): Record<string, unknown> {
  return {
    id: account.id,
    email: account.email,
    email_verified: account.emailVerified,
    name: account.name,
    given_name: account.givenName,
    family_name: account.familyName,
    disabled: account.disabled,
    password_set: account.hasPassword,
    created_at: account.createdAt.toISOString(),
    last_login_at: account.lastLoginAt?.toISOString() ?? null,
  };
}

/** A terms-of-service acceptance as the admin API shows it. */
export function termsAcceptanceJson(acceptance: TermsAcceptance): Record<string, unknown> {
  return { terms_uri: acceptance.termsUri, terms_version: acceptance.termsVersion, client_id: acceptance.clientId, accepted_at: acceptance.acceptedAt.toISOString() };
}

/** A linked upstream identity as the admin API shows it. */
export function identityJson(identity: LinkedIdentity): Record<string, unknown> {
  return {
    provider: identity.providerAlias,
    subject: identity.subject,
    email: identity.email,
    created_at: identity.createdAt.toISOString(),
    last_login_at: identity.lastLoginAt?.toISOString() ?? null,
  };
}

const email = z.email({ error: 'must be an email address' }).max(320, 'must be at most 320 characters');
const flag = z.boolean({ error: 'must be true or false' });
const nameField = z.string({ error: 'must be a string, or null to clear it' }).trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').nullable();

const createBody = z.strictObject({
  email: z.string({ error: 'is required' }).pipe(email),
  email_verified: z.boolean({ error: 'is required: true or false' }),
  password: z
    .string({ error: 'must be a string' })
    .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
    .max(MAX_PASSWORD_LENGTH, `must be at most ${MAX_PASSWORD_LENGTH} characters`)
    .optional(),
  name: nameField.optional(),
  given_name: nameField.optional(),
  family_name: nameField.optional(),
});

const patchBody = z.strictObject({
  email: email.nullable().optional(),
  email_verified: flag.optional(),
  disabled: flag.optional(),
  name: nameField.optional(),
  given_name: nameField.optional(),
  family_name: nameField.optional(),
});

const identityBody = z.strictObject({
  provider: z.string({ error: 'is required: a provider alias' }).min(1, 'must not be empty'),
  subject: z.string({ error: 'is required: the subject at that provider' }).min(1, 'must not be empty').max(1024, 'must be at most 1024 characters'),
});

/** A new user as `POST users` takes it. */
export type UserCreateInput = z.output<typeof createBody>;
/** The changes a `PATCH users/<id>` makes; a field given as null is cleared. */
export type UserPatchInput = z.output<typeof patchBody>;
/** An identity to pre-link. */
export type IdentityInput = z.output<typeof identityBody>;

/** Parses `body` with `schema`: the value, or every problem (read-only fields named as such). */
function parse<T extends z.ZodType>(schema: T, body: unknown): { value?: z.output<T>; problems: FieldProblem[] } {
  if (!isJsonObject(body)) return { problems: [{ field: '(body)', message: 'must be a JSON object' }] };
  const readOnly = READ_ONLY.filter((key) => key in body);
  const rest = Object.fromEntries(Object.entries(body).filter(([key]) => !(READ_ONLY as readonly string[]).includes(key)));
  const parsed = schema.safeParse(rest);
  const problems = [...(parsed.success ? [] : zodProblems(parsed.error)), ...readOnly.map((field) => ({ field, message: 'is read-only' }))];
  return problems.length ? { problems } : { value: parsed.data as z.output<T>, problems };
}

/** Validates a `POST users` body, listing every problem. */
export function parseUserCreate(body: unknown): { value?: UserCreateInput; problems: FieldProblem[] } {
  return parse(createBody, body);
}

/** Validates a `PATCH users/<id>` merge patch, listing every problem. */
export function parseUserPatch(body: unknown): { value?: UserPatchInput; problems: FieldProblem[] } {
  return parse(patchBody, body);
}

/** Validates a `POST users/<id>/identities` body, listing every problem. */
export function parseIdentity(body: unknown): { value?: IdentityInput; problems: FieldProblem[] } {
  return parse(identityBody, body);
}
