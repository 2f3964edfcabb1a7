import express, { type Router } from 'express';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { Store } from './store/store.ts';

/** `/healthz` (process alive), `/readyz` (database reachable, migrations current), `/metrics`. */
export function operationsRoutes(deps: { store: Pick<Store, 'ping' | 'migrationsCurrent'>; metrics: Metrics; logger: Logger }): Router {
  const router = express.Router();

  router.get('/healthz', (_req, res) => {
    res.set('cache-control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    res.set('cache-control', 'no-store');
    const checks: Record<string, 'ok' | 'failing'> = { database: 'failing', migrations: 'failing' };
    try {
      await deps.store.ping();
      checks.database = 'ok';
      checks.migrations = (await deps.store.migrationsCurrent()) ? 'ok' : 'failing';
    } catch (err) {
      deps.logger.warn({ err }, 'readiness check failed');
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });

  router.get('/metrics', async (_req, res) => {
    res.set('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  return router;
}
