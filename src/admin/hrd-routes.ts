import type { Router } from 'express';
import { z } from 'zod';
import { explainHomeRealm, type HomeRealmDecision } from '../federation/home-realm.ts';
import type { AdminDeps } from './context.ts';
import { parseQuery } from './request.ts';

const explainQuery = z.strictObject({
  client_id: z.string({ error: 'is required' }).min(1, 'is required'),
  idp_hint: z.string().optional(),
  kc_idp_hint: z.string().optional(),
  acr_values: z.string().optional(),
  login_hint: z.string().optional(),
  email: z.string().optional(),
  last_used: z.string().optional(),
});

/** A home-realm decision in the admin API's snake_case. */
function decisionJson(decision: HomeRealmDecision): Record<string, unknown> {
  switch (decision.action) {
    case 'redirect':
      return { action: 'redirect', provider: decision.provider };
    case 'error':
      return { action: 'error', error: decision.error, provider: decision.provider };
    case 'picker':
      return {
        action: 'picker',
        providers: decision.providers,
        local_login: decision.localLogin,
        email_first: decision.emailFirst,
        ...(decision.unmatchedDomain !== undefined ? { unmatched_domain: decision.unmatchedDomain } : {}),
      };
  }
}

/**
 * `hrd/explain`: what home-realm discovery decides for a client and the login's hints, and the
 * rule that decided it, exactly as the login page would.
 */
export function registerHrdRoutes(router: Router, deps: AdminDeps): void {
  router.get('/hrd/explain', async (req, res) => {
    const q = parseQuery(explainQuery, req);
    // An unknown client is the flow's own 404 (`No client "…".`).
    const explanation = await explainHomeRealm(deps.services, {
      clientId: q.client_id,
      idpHint: q.idp_hint,
      kcIdpHint: q.kc_idp_hint,
      acrValues: q.acr_values,
      loginHint: q.login_hint,
      email: q.email,
      lastUsed: q.last_used,
    });
    res.json({ decision: decisionJson(explanation.decision), rule: explanation.rule, candidates: explanation.candidates });
  });
}
