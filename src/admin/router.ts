import express, { type RequestHandler, type Router } from 'express';
import type { OpenContext } from '../../providers/types.ts';
import type { Services } from '../app.ts';
import { registerAuditRoutes } from './audit-routes.ts';
import { requireAdminToken } from './auth.ts';
import { registerClientRoutes } from './clients-routes.ts';
import type { AdminDeps } from './context.ts';
import { registerHrdRoutes } from './hrd-routes.ts';
import { registerLogoutDeliveryRoutes } from './logout-deliveries-routes.ts';
import { openApiDocument } from './openapi.ts';
import { RealmgateError } from '../errors.ts';
import { registerProviderRoutes } from './providers-routes.ts';
import { jsonBody } from './request.ts';
import { registerSessionRoutes } from './sessions-routes.ts';
import { registerUserRoutes } from './users-routes.ts';

/** One route of the admin router: an HTTP method (upper case) and an express path such as `/providers/:alias`. */
export interface AdminRoute {
  method: string;
  path: string;
}

/** What the router keeps of each route layer (express does not type its stack). */
interface RouteLayer {
  route?: { path: string; methods: Record<string, boolean> };
  match(path: string): unknown;
}

/** Every route registered on an admin router, read from the router itself. */
export function adminRouteTable(router: Router): AdminRoute[] {
  const stack = (router as unknown as { stack: RouteLayer[] }).stack;
  return stack.flatMap((layer) =>
    layer.route ? Object.keys(layer.route.methods).filter((m) => m !== '_all').map((m) => ({ method: m.toUpperCase(), path: layer.route!.path })) : [],
  );
}

/** 405 (with `Allow`) for a known path and another method, 404 for an unknown path: never falls through to the token engine. */
function noRoute(router: Router): RequestHandler {
  return (req) => {
    const stack = (router as unknown as { stack: RouteLayer[] }).stack;
    const allowed = stack.filter((l) => l.route && l.match(req.path)).flatMap((l) => Object.keys(l.route!.methods).map((m) => m.toUpperCase()));
    if (allowed.length) {
      throw new RealmgateError('method_not_allowed', { safeMessage: `${req.method} is not allowed here.`, headers: { allow: [...new Set(allowed)].join(', ') } });
    }
    throw new RealmgateError('not_found', { safeMessage: `No admin API resource at ${req.baseUrl}${req.path}.` });
  };
}

/**
 * The admin API, mounted at `/admin/api`: the OpenAPI document is public, every other route needs
 * a bearer access token with the `admin` scope. JSON in, JSON out, problems as
 * `application/problem+json`, every change audited in its own transaction. `openContext` is the
 * federation's, so a provider test opens providers exactly as logins do.
 */
export function adminRoutes(services: Services, options: { openContext: OpenContext }): Router {
  const router = express.Router();
  const deps: AdminDeps = { services, audit: services.store.audit, openContext: options.openContext };

  router.use((_req, res, next) => {
    res.set('cache-control', 'no-store');
    next();
  });
  const openApi = openApiDocument({ issuer: services.config.issuer });
  router.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  router.use(requireAdminToken(services));
  router.use(jsonBody());

  registerProviderRoutes(router, deps);
  registerClientRoutes(router, deps);
  registerUserRoutes(router, deps);
  registerSessionRoutes(router, deps);
  registerLogoutDeliveryRoutes(router, deps);
  registerHrdRoutes(router, deps);
  registerAuditRoutes(router, deps);

  router.use(noRoute(router));
  return router;
}
