import type { Router } from 'express';
import { z } from 'zod';
import { DELIVERY_STATUSES, type LogoutDelivery } from '../logout/outbox.ts';
import { actorOf, type AdminDeps } from './context.ts';
import { pageQuery, toPage } from './paging.ts';
import { notFound } from './problems.ts';
import { param, parseQuery } from './request.ts';

const listQuery = z.strictObject({
  ...pageQuery,
  status: z.enum(DELIVERY_STATUSES, { error: `must be one of: ${DELIVERY_STATUSES.join(', ')}` }).optional(),
  client_id: z.string().optional(),
  session: z.string().optional(),
});

/** A back-channel logout delivery as the admin API shows it. */
export function deliveryJson(d: LogoutDelivery): Record<string, unknown> {
  return {
    id: String(d.id),
    session: d.sessionUid,
    client_id: d.clientId,
    account_id: d.accountId,
    sid: d.sid ?? null,
    reason: d.reason,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
    give_up_at: d.giveUpAt.toISOString(),
    created_at: d.createdAt.toISOString(),
    delivered_at: d.deliveredAt?.toISOString() ?? null,
    last_error: d.lastError ?? null,
  };
}

/** The numeric id of `logout-deliveries/:id`, or a 404 for anything else. */
function deliveryId(raw: string): number {
  if (!/^\d{1,15}$/.test(raw)) throw notFound('logout delivery', raw);
  return Number(raw);
}

/** `logout-deliveries` (filtered by status, client_id, session) and `logout-deliveries/:id/retry`. */
export function registerLogoutDeliveryRoutes(router: Router, deps: AdminDeps): void {
  router.get('/logout-deliveries', async (req, res) => {
    const query = parseQuery(listQuery, req);
    const rows = await deps.services.outbox.list({
      limit: query.limit + 1,
      afterId: query.cursor === undefined ? undefined : Number(query.cursor),
      status: query.status,
      clientId: query.client_id,
      sessionUid: query.session,
    });
    res.json(toPage(rows, query.limit, (d) => d.id, deliveryJson));
  });

  router.get('/logout-deliveries/:id', async (req, res) => {
    const delivery = await deps.services.outbox.get(deliveryId(param(req, 'id')));
    if (!delivery) throw notFound('logout delivery', param(req, 'id'));
    res.json(deliveryJson(delivery));
  });

  router.post('/logout-deliveries/:id/retry', async (req, res) => {
    const id = deliveryId(param(req, 'id'));
    const before = await deps.services.outbox.get(id);
    if (!before) throw notFound('logout delivery', String(id));
    const delivery = await deps.services.store.transaction(async (tx) => {
      const retried = await tx.logoutDeliveries.retry(id);
      await tx.audit.record(
        {
          ...actorOf(res),
          action: 'retry',
          resourceType: 'logout_delivery',
          resourceId: String(id),
          before: { status: before.status, attempts: before.attempts },
          after: { status: 'pending' },
        },
      );
      return retried!;
    });
    res.status(202).json(deliveryJson(delivery));
  });
}
