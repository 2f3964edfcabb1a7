import type { Router } from 'express';
import { z } from 'zod';
import type { AuditRecord } from '../store/audit.ts';
import type { AdminDeps } from './context.ts';
import { pageQuery, toPage } from './paging.ts';
import { invalidFields } from './problems.ts';
import { parseQuery } from './request.ts';

/** Resource types that appear in the audit log. */
export const AUDITED_RESOURCES = ['provider', 'client', 'session', 'user', 'logout_delivery'] as const;

const listQuery = z.strictObject({
  ...pageQuery,
  resource_type: z.enum(AUDITED_RESOURCES, { error: `must be one of: ${AUDITED_RESOURCES.join(', ')}` }).optional(),
  resource_id: z.string().optional(),
  actor: z.string().optional(),
});

/** An audit entry as the admin API shows it. */
export function auditJson(entry: AuditRecord): Record<string, unknown> {
  return {
    id: entry.id,
    at: entry.at.toISOString(),
    actor: entry.actor,
    action: entry.action,
    resource_type: entry.resourceType,
    resource_id: entry.resourceId,
    before: entry.before,
    after: entry.after,
    request_id: entry.requestId,
  };
}

/** `audit`: every change made through the admin API, newest first, filtered by resource or actor. */
export function registerAuditRoutes(router: Router, deps: AdminDeps): void {
  router.get('/audit', async (req, res) => {
    const q = parseQuery(listQuery, req);
    if (q.cursor !== undefined && typeof q.cursor !== 'number') throw invalidFields([{ field: 'cursor', message: 'is not a cursor returned by this API' }]);
    const rows = await deps.audit.list({
      limit: q.limit + 1,
      beforeId: q.cursor,
      resourceType: q.resource_type,
      resourceId: q.resource_id,
      actor: q.actor,
    });
    res.json(toPage(rows, q.limit, (e) => e.id, auditJson));
  });
}
