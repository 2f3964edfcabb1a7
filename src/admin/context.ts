import type { Response } from 'express';
import type { OpenContext } from '../../providers/types.ts';
import type { Services } from '../app.ts';
import type { AuditLog } from '../store/audit.ts';

/** What the admin API's workflows need: the node's services, the audit log and the federation's open context. */
export interface AdminDeps {
  services: Services;
  audit: AuditLog;
  /** The federation's open context (SSRF guard, timeout, endpoint URLs), for provider tests. */
  openContext: OpenContext;
}

/** Who makes a change (the admin token's client_id) and the request it came in, for the audit log. */
export interface ChangeActor {
  actor: string;
  requestId: string | null;
}

/** The actor the admin token check stored on the response. */
export function actorOf(res: Response): ChangeActor {
  const actor = res.locals.adminActor as string | undefined;
  if (!actor) throw new Error('admin route reached without an authenticated actor');
  return { actor, requestId: (res.locals.requestId as string | undefined) ?? null };
}
