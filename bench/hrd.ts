/**
 * The home-realm discovery steps the bench times at 10, 1,000 and 10,000 providers: what a
 * browser waits for on the login page with a `login_hint` and without one, and what the admin
 * API's `hrd/explain` answers for the same hint. Each step checks its answer, so a fast wrong
 * answer never counts.
 */
import * as oidc from 'openid-client';
import { HttpSession } from '../test/support/http-session.ts';
import { APP_CLIENT, APP_REDIRECT_URI } from './logins.ts';
import type { RealmgateNode } from './realmgate.ts';
import { UPSTREAM_DOMAIN } from './setup.ts';

/** A node with N providers and the application's configuration there. */
export interface HrdNode {
  node: RealmgateNode;
  app: oidc.Configuration;
}

/** One timed step at one node; the choice page's size goes to `pageBytes`. */
export type HrdStep = (at: HrdNode, pageBytes: (bytes: number) => void) => Promise<void>;

/** The steps by name, in the order they are printed. */
export function hrdSteps(upstreamIssuer: string): Record<string, HrdStep> {
  const request = (at: HrdNode, params: Record<string, string>) =>
    oidc.buildAuthorizationUrl(at.app, { redirect_uri: APP_REDIRECT_URI, scope: 'openid email', state: oidc.randomState(), ...params });
  return {
    'login page, login_hint → provider': async (at) => {
      const page = await new HttpSession().follow(request(at, { login_hint: `ada@${UPSTREAM_DOMAIN}` }), {}, upstreamIssuer);
      if (page.status !== 0) throw new Error(`${at.node.name}: login_hint did not lead to the upstream: ${page.status} ${page.url}`);
    },
    'login page, no hint (choice)': async (at, pageBytes) => {
      const page = await new HttpSession().follow(request(at, {}), {}, APP_REDIRECT_URI);
      if (page.status !== 200 || !page.body.includes('name="email"')) throw new Error(`${at.node.name}: no login page: ${page.status} ${page.url}`);
      pageBytes(page.body.length);
    },
    'admin hrd/explain (login_hint)': async (at) => {
      const query = new URLSearchParams({ client_id: APP_CLIENT.id, login_hint: `ada@${UPSTREAM_DOMAIN}` });
      const res = await fetch(`${at.node.url}/admin/api/hrd/explain?${query}`, { headers: { authorization: `Bearer ${await at.node.adminToken()}` } });
      const body = (await res.json()) as { decision?: { provider?: string } };
      if (res.status !== 200 || body.decision?.provider !== 'up') throw new Error(`${at.node.name}: hrd/explain answered ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    },
  };
}
