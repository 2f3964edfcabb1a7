import type { Router } from 'express';
import { z } from 'zod';
import type { Account } from '../accounts/accounts.ts';
import { ExternalIdentityRepository, type LinkedIdentity } from '../accounts/external-identities.ts';
import type { AdminDeps } from './context.ts';
import { pageQuery, toPage } from './paging.ts';
import { invalidFields, notFound } from './problems.ts';
import { param, parseQuery } from './request.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const listQuery = z.strictObject({ ...pageQuery, email: z.string().min(1, 'must not be empty').optional() });

/** A local account as the admin API lists it; `password_set` says whether it has a password, never the hash. */
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

/** A linked upstream identity as the admin API shows it. */
function identityJson(identity: LinkedIdentity): Record<string, unknown> {
  return {
    provider: identity.providerAlias,
    subject: identity.subject,
    email: identity.email,
    created_at: identity.createdAt.toISOString(),
    last_login_at: identity.lastLoginAt?.toISOString() ?? null,
  };
}

/** `users` (local accounts, filtered by email) and `users/:id` with its claims and linked upstream identities. */
export function registerUserRoutes(router: Router, deps: AdminDeps): void {
  const { accounts, db } = deps.services;
  const identities = new ExternalIdentityRepository(db);

  router.get('/users', async (req, res) => {
    const q = parseQuery(listQuery, req);
    if (q.cursor !== undefined && !UUID.test(String(q.cursor))) throw invalidFields([{ field: 'cursor', message: 'is not a cursor returned by this API' }]);
    const rows = await accounts.list({ limit: q.limit + 1, ...(q.email ? { email: q.email } : {}), ...(q.cursor !== undefined ? { afterId: String(q.cursor) } : {}) });
    res.json(toPage(rows, q.limit, (a) => a.id, userJson));
  });

  router.get('/users/:id', async (req, res) => {
    const id = param(req, 'id');
    const account = await accounts.get(id);
    if (!account) throw notFound('user', id);
    res.json({ ...userJson(account), claims: account.claims, identities: (await identities.listForAccount(id)).map(identityJson) });
  });
}
