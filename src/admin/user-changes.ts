import { type Account, emailTaken, type NewAccount } from '../store/accounts.ts';
import type { LinkedIdentity } from '../store/external-identities.ts';
import type { StoreTransaction } from '../store/store.ts';
import { linkIdentity, unlinkIdentity, type LinkingDeps } from '../accounts/linking.ts';
import { hashPassword } from '../accounts/passwords.ts';
import { RealmgateError } from '../errors.ts';
import type { AdminDeps, ChangeActor } from './context.ts';
import { invalidFields, notFound } from './problems.ts';
import { identityJson, parseIdentity, parseUserCreate, parseUserPatch, userJson } from './user-json.ts';

/**
 * An update to an email another password account uses is refused by the unique index: the same
 * `email_taken` the account store throws on create. Other errors (the store's and linking's own
 * RealmgateErrors among them) pass unchanged.
 */
function translate(error: unknown, email?: string | null): never {
  if (!(error instanceof RealmgateError) && (error as { code?: string }).code === '23505' && email) throw emailTaken(email, error);
  throw error;
}

/** The account locked for update inside `tx`, or a 404 (a malformed id is simply not found). */
async function lockAccount(tx: StoreTransaction, id: string): Promise<Account> {
  const account = await tx.accounts.getForUpdate(id);
  if (!account) throw notFound('user', id);
  return account;
}

/** What linking needs, from the node's services and the admin audit log. */
function linkingDeps(deps: AdminDeps): LinkingDeps {
  return { store: deps.services.store };
}

/** Creates a local account; with `password` it can sign in with it at once. Its `id` is the `sub` of its tokens. */
export async function createUser(deps: AdminDeps, actor: ChangeActor, body: unknown): Promise<Account> {
  const { value, problems } = parseUserCreate(body);
  if (!value) throw invalidFields(problems);
  // Hashing is deliberately slow: do it before the transaction holds anything.
  const passwordHash = value.password === undefined ? null : await hashPassword(value.password);
  const input: NewAccount = {
    email: value.email,
    emailVerified: value.email_verified,
    name: value.name ?? null,
    givenName: value.given_name ?? null,
    familyName: value.family_name ?? null,
    passwordHash,
  };
  return deps.services.store
    .transaction(async (tx) => {
      const account = await tx.accounts.create(input);
      await tx.audit.record({ ...actor, action: 'create', resourceType: 'user', resourceId: account.id, before: null, after: userJson(account) });
      return account;
    })
    .catch((error: unknown) => translate(error, value.email));
}

/**
 * Applies a JSON Merge Patch of `name`, `given_name`, `family_name`, `email`, `email_verified`
 * and `disabled`; null clears a name. Disabling ends the account's sessions in the same
 * transaction. A patch that changes nothing writes no audit entry.
 */
export async function patchUser(deps: AdminDeps, actor: ChangeActor, id: string, body: unknown): Promise<Account> {
  const { value, problems } = parseUserPatch(body);
  if (!value) throw invalidFields(problems);
  return deps.services.store
    .transaction(async (tx) => {
      const before = await lockAccount(tx, id);
      if (value.email === null && before.hasPassword) {
        throw invalidFields([{ field: 'email', message: 'cannot be removed from an account with a password: it is how the account signs in' }]);
      }
      const changes: NewAccount & { disabled?: boolean } = {
        ...(value.email !== undefined ? { email: value.email } : {}),
        ...(value.email_verified !== undefined ? { emailVerified: value.email_verified } : {}),
        ...(value.name !== undefined ? { name: value.name } : {}),
        ...(value.given_name !== undefined ? { givenName: value.given_name } : {}),
        ...(value.family_name !== undefined ? { familyName: value.family_name } : {}),
        ...(value.disabled !== undefined ? { disabled: value.disabled } : {}),
      };
      const after = (await tx.accounts.update(id, changes))!;
      if (after.disabled && value.disabled === true) await tx.endAccountSessions(id);
      const [was, is] = [userJson(before), userJson(after)];
      if (JSON.stringify(was) !== JSON.stringify(is)) {
        await tx.audit.record({ ...actor, action: 'update', resourceType: 'user', resourceId: id, before: was, after: is });
      }
      return after;
    })
    .catch((error: unknown) => translate(error, value.email));
}

/** Deletes an account: its sessions end and its links go with it (the audit entry lists them). */
export async function deleteUser(deps: AdminDeps, actor: ChangeActor, id: string): Promise<void> {
  await deps.services.store.transaction(async (tx) => {
    const before = await lockAccount(tx, id);
    const identities = await tx.identities.listForAccount(id);
    await tx.endAccountSessions(id);
    await tx.accounts.delete(id);
    await tx.audit.record({ ...actor, action: 'delete', resourceType: 'user', resourceId: id, before: { ...userJson(before), identities: identities.map(identityJson) }, after: null });
  });
}

/**
 * Pre-links an upstream identity an administrator knows (`{provider, subject}`), so its first
 * sign-in reaches this account; audited as a link by rule `admin`. The provider must exist; an
 * identity linked to another account is a 409; linking it again to this account changes nothing.
 */
export async function linkUserIdentity(deps: AdminDeps, actor: ChangeActor, id: string, body: unknown): Promise<{ outcome: 'linked' | 'unchanged'; identity: LinkedIdentity }> {
  const { value, problems } = parseIdentity(body);
  // An unknown provider is listed with the body's other problems, so one answer names them all.
  const alias = (body as { provider?: unknown } | null)?.provider;
  if (typeof alias === 'string' && alias && !problems.some((p) => p.field === 'provider') && !(await deps.services.providers.get(alias))) {
    problems.push({ field: 'provider', message: `is not a provider alias: no provider "${alias}"` });
  }
  if (!value || problems.length) throw invalidFields(problems);
  if (!(await deps.services.accounts.get(id))) throw notFound('user', id);
  const identity = {
    providerAlias: value.provider,
    subject: value.subject,
    profile: { email: null, emailVerified: false, name: null, givenName: null, familyName: null, claims: {} },
    upstreamClaims: {},
  };
  const outcome = await linkIdentity(linkingDeps(deps), id, identity, actor, 'admin').catch((error: unknown) => translate(error));
  const linked = (await deps.services.identities.listForAccount(id)).find((l) => l.providerAlias === value.provider && l.subject === value.subject);
  // Linked a moment ago; gone only if a concurrent unlink or delete won the race.
  if (!linked) throw notFound('identity', `${value.provider}/${value.subject}`);
  return { outcome, identity: linked };
}

/** Removes a linked identity; 404 when the account has no such link, 409 when it is the last sign-in method. */
export async function unlinkUserIdentity(deps: AdminDeps, actor: ChangeActor, id: string, alias: string, subject: string): Promise<void> {
  const removed = await unlinkIdentity(linkingDeps(deps), id, alias, subject, actor).catch((error: unknown) => translate(error));
  if (!removed) throw new RealmgateError('not_found', { safeMessage: `User "${id}" has no identity ${alias}/${subject}.` });
}
