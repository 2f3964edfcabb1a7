import type { Response, Router } from 'express';
import { z } from 'zod';
import { RealmgateError, isRealmgateError } from '../errors.ts';
import type { ProviderRecord } from '../store/providers.ts';
import { ifMatchOf, setEtag } from './conditional.ts';
import { actorOf, type AdminDeps } from './context.ts';
import { pageQuery, toPage } from './paging.ts';
import { refreshProvider } from '../federation/provider-refresh.ts';
import { notFound } from './problems.ts';
import { createProvider, deleteProvider, patchProvider, replaceProvider, setProviderEnabled } from './provider-changes.ts';
import { providerJson } from './provider-json.ts';
import { testProvider } from './provider-test.ts';
import { bodyOf, param, parseQuery } from './request.ts';

const listQuery = z.strictObject({
  ...pageQuery,
  kind: z.string().optional(),
  enabled: z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true').optional(),
  domain: z.string().optional(),
});

/** Answers with a provider, its ETag and the given status. */
function sendProvider(res: Response, status: number, record: ProviderRecord): void {
  setEtag(res, record.version);
  res.status(status).json(providerJson(record));
}

/**
 * `providers` and `providers/:alias`: upstream identity providers. Enabling and disabling is a
 * PATCH of `enabled`, or `POST providers/:alias/enable|disable`. `secrets` is write-only.
 * `POST providers/:alias/test` opens the provider as a login would and reports each check.
 * `POST providers/:alias/refresh` re-reads what the provider loads from the network (a SAML
 * metadata URL) now and answers with the provider, its `status` showing the outcome.
 */
export function registerProviderRoutes(router: Router, deps: AdminDeps): void {
  const { providers } = deps.services;

  router.get('/providers', async (req, res) => {
    const query = parseQuery(listQuery, req);
    const rows = await providers.list({
      limit: query.limit + 1,
      afterAlias: query.cursor === undefined ? undefined : String(query.cursor),
      kind: query.kind as ProviderRecord['kind'] | undefined,
      enabled: query.enabled,
      domain: query.domain,
    });
    res.json(toPage(rows, query.limit, (p) => p.alias, providerJson));
  });

  router.post('/providers', async (req, res) => {
    const created = await createProvider(deps, actorOf(res), bodyOf(req));
    res.location(`${req.baseUrl}/providers/${created.alias}`);
    sendProvider(res, 201, created);
  });

  router.get('/providers/:alias', async (req, res) => {
    const alias = param(req, 'alias');
    const record = await providers.get(alias);
    if (!record) throw notFound('provider', alias);
    sendProvider(res, 200, record);
  });

  router.put('/providers/:alias', async (req, res) => {
    sendProvider(res, 200, await replaceProvider(deps, actorOf(res), param(req, 'alias'), bodyOf(req), ifMatchOf(req)));
  });

  router.patch('/providers/:alias', async (req, res) => {
    sendProvider(res, 200, await patchProvider(deps, actorOf(res), param(req, 'alias'), bodyOf(req), ifMatchOf(req)));
  });

  router.delete('/providers/:alias', async (req, res) => {
    await deleteProvider(deps, actorOf(res), param(req, 'alias'), ifMatchOf(req));
    res.status(204).end();
  });

  router.post('/providers/:alias/enable', async (req, res) => {
    sendProvider(res, 200, await setProviderEnabled(deps, actorOf(res), param(req, 'alias'), true, ifMatchOf(req)));
  });

  router.post('/providers/:alias/disable', async (req, res) => {
    sendProvider(res, 200, await setProviderEnabled(deps, actorOf(res), param(req, 'alias'), false, ifMatchOf(req)));
  });

  router.post('/providers/:alias/refresh', async (req, res) => {
    const alias = param(req, 'alias');
    const refreshed = await refreshProvider({ providers, context: deps.openContext, logger: deps.services.logger }, alias).catch((error: unknown) => {
      throw isRealmgateError(error, 'provider_unknown') ? notFound('provider', alias) : error;
    });
    if (!refreshed) throw new RealmgateError('conflict', { safeMessage: `Providers of this kind load nothing that could be refreshed.` });
    const after = (await providers.get(alias))!;
    // The refresh is an admin action too: who asked, and what the provider looked like after it.
    await deps.audit.record({ ...actorOf(res), action: 'refresh', resourceType: 'provider', resourceId: alias, before: null, after: { ...providerJson(after) } });
    sendProvider(res, 200, after);
  });

  router.post('/providers/:alias/test', async (req, res) => {
    res.json(await testProvider({ providers, openContext: deps.openContext }, param(req, 'alias')));
  });
}
