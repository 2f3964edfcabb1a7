import type { Response, Router } from 'express';
import { z } from 'zod';
import { createClient, deleteClient, patchClient, replaceClient, type ClientWriteResult } from './client-changes.ts';
import { clientJson } from './client-metadata.ts';
import { ifMatchOf, setEtag } from './conditional.ts';
import { actorOf, type AdminDeps } from './context.ts';
import { pageQuery, toPage } from './paging.ts';
import { notFound } from './problems.ts';
import { bodyOf, param, parseQuery } from './request.ts';

const listQuery = z.strictObject({ ...pageQuery });

/** Answers a client write: ETag, the representation, and a generated secret this once. */
function sendWritten(res: Response, status: number, result: ClientWriteResult): void {
  setEtag(res, result.client.version);
  res.status(status).json({
    ...clientJson(result.client),
    ...(result.generatedSecret ? { client_secret: result.generatedSecret } : {}),
  });
}

/**
 * `clients` and `clients/:client_id`: OAuth clients as OpenID Connect client metadata plus
 * `allowed_providers`, `local_login`, `require_consent`. `client_secret` is write-only; when
 * Realmgate generates one it appears in that write's response only.
 */
export function registerClientRoutes(router: Router, deps: AdminDeps): void {
  router.get('/clients', async (req, res) => {
    const query = parseQuery(listQuery, req);
    const rows = await deps.services.clients.list({ limit: query.limit + 1, ...(query.cursor !== undefined ? { afterId: String(query.cursor) } : {}) });
    res.json(toPage(rows, query.limit, (c) => c.metadata.client_id, clientJson));
  });

  router.post('/clients', async (req, res) => {
    const result = await createClient(deps, actorOf(res), bodyOf(req));
    res.location(`${req.baseUrl}/clients/${encodeURIComponent(result.client.metadata.client_id)}`);
    sendWritten(res, 201, result);
  });

  router.get('/clients/:client_id', async (req, res) => {
    const id = param(req, 'client_id');
    const client = await deps.services.clients.get(id);
    if (!client) throw notFound('client', id);
    setEtag(res, client.version);
    res.json(clientJson(client));
  });

  router.put('/clients/:client_id', async (req, res) => {
    sendWritten(res, 200, await replaceClient(deps, actorOf(res), param(req, 'client_id'), bodyOf(req), ifMatchOf(req)));
  });

  router.patch('/clients/:client_id', async (req, res) => {
    sendWritten(res, 200, await patchClient(deps, actorOf(res), param(req, 'client_id'), bodyOf(req), ifMatchOf(req)));
  });

  router.delete('/clients/:client_id', async (req, res) => {
    await deleteClient(deps, actorOf(res), param(req, 'client_id'), ifMatchOf(req));
    res.status(204).end();
  });
}
