import type { Router } from 'express';
import { z } from 'zod';
import type { Account } from '../store/accounts.ts';
import { RealmgateError } from '../errors.ts';
import { actorOf, type AdminDeps } from './context.ts';
import { pageQuery, toPage } from './paging.ts';
import { invalidFields, notFound } from './problems.ts';
import { bodyOf, param, parseQuery } from './request.ts';
import { createUser, deleteUser, linkUserIdentity, patchUser, unlinkUserIdentity } from './user-changes.ts';
import { identityJson, termsAcceptanceJson, userJson } from './user-json.ts';
import { resetUserFactor, resetUserFactors, userFactorsJson } from './user-factors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const listQuery = z.strictObject({ ...pageQuery, email: z.string().min(1, 'must not be empty').optional() });

/**
 * `users` (local accounts: list by email, create), `users/:id` (read with claims, linked
 * identities, accepted terms and second factors, merge-patch, delete), `users/:id/identities` (pre-link, unlink)
 * and `users/:id/factors` (reset one or all). Every change is
 * audited as resource type `user`.
 */
export function registerUserRoutes(router: Router, deps: AdminDeps): void {
  const { accounts, identities, termsAcceptances } = deps.services;

  /** A user with its claims, linked identities and accepted terms. */
  const detail = async (account: Account) => ({
    ...userJson(account),
    claims: account.claims,
    identities: (await identities.listForAccount(account.id)).map(identityJson),
    terms_accepted: (await termsAcceptances.listForAccount(account.id)).map(termsAcceptanceJson),
    ...(await userFactorsJson(deps, account.id)),
  });

  router.get('/users', async (req, res) => {
    const q = parseQuery(listQuery, req);
    if (q.cursor !== undefined && !UUID.test(String(q.cursor))) throw invalidFields([{ field: 'cursor', message: 'is not a cursor returned by this API' }]);
    const rows = await accounts.list({ limit: q.limit + 1, ...(q.email ? { email: q.email } : {}), ...(q.cursor !== undefined ? { afterId: String(q.cursor) } : {}) });
    res.json(toPage(rows, q.limit, (a) => a.id, userJson));
  });

  router.post('/users', async (req, res) => {
    const account = await createUser(deps, actorOf(res), bodyOf(req));
    res.location(`${req.baseUrl}/users/${account.id}`);
    res.status(201).json({ ...userJson(account), claims: account.claims, identities: [], terms_accepted: [], factors: [], recovery_codes_left: 0 });
  });

  router.get('/users/:id', async (req, res) => {
    const id = param(req, 'id');
    const account = await accounts.get(id);
    if (!account) throw notFound('user', id);
    res.json(await detail(account));
  });

  router.patch('/users/:id', async (req, res) => {
    const account = await patchUser(deps, actorOf(res), param(req, 'id'), bodyOf(req));
    res.json(await detail(account));
  });

  router.delete('/users/:id', async (req, res) => {
    await deleteUser(deps, actorOf(res), param(req, 'id'));
    res.status(204).end();
  });

  router.post('/users/:id/identities', async (req, res) => {
    const id = param(req, 'id');
    const { outcome, identity } = await linkUserIdentity(deps, actorOf(res), id, bodyOf(req));
    res.location(`${req.baseUrl}/users/${id}/identities/${encodeURIComponent(identity.providerAlias)}/${encodeURIComponent(identity.subject)}`);
    res.status(outcome === 'linked' ? 201 : 200).json(identityJson(identity));
  });

  router.delete('/users/:id/identities/:alias/:subject', async (req, res) => {
    await unlinkUserIdentity(deps, actorOf(res), param(req, 'id'), param(req, 'alias'), param(req, 'subject'));
    res.status(204).end();
  });

  router.delete('/users/:id/factors', async (req, res) => {
    await resetUserFactors(deps, actorOf(res), param(req, 'id'));
    res.status(204).end();
  });

  router.delete('/users/:id/factors/:factor_id', async (req, res) => {
    const factorId = param(req, 'factor_id');
    if (!UUID.test(factorId)) throw new RealmgateError('not_found', { safeMessage: `User "${param(req, 'id')}" has no factor "${factorId}".` });
    await resetUserFactor(deps, actorOf(res), param(req, 'id'), factorId);
    res.status(204).end();
  });
}
