/**
 * The demo's application: a tiny web app that signs its users in through Realmgate with
 * openid-client (authorization code, PKCE, state, nonce) and shows the ID token it got.
 * Login state lives in memory, keyed by a cookie: enough for a demo, not for production.
 */
import crypto from 'node:crypto';
import { serve } from './serve.ts';
import express, { type Request, type Response } from 'express';
import * as jose from 'jose';
import * as oidc from 'openid-client';

const COOKIE = 'demo_app_sid';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo application</title>
<style>body{font:16px system-ui,sans-serif;max-width:760px;margin:3rem auto;padding:0 1rem}h1{color:#268bd2}
a.button{display:inline-block;padding:.5rem .9rem;margin:.25rem .25rem .25rem 0;border-radius:8px;background:#268bd2;color:#fff;text-decoration:none}
pre{background:#073642;color:#eee8d5;padding:1rem;border-radius:8px;overflow:auto}code{font-size:.9rem}</style></head>
<body><h1>Demo application</h1>${body}</body></html>`;
}

interface Visit {
  pending?: { codeVerifier: string; state: string; nonce: string };
  idToken?: string;
  claims?: Record<string, unknown>;
  userinfo?: Record<string, unknown>;
}

function cookieOf(req: Request): string | undefined {
  return /(?:^|;\s*)demo_app_sid=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1];
}

/** Starts the demo application at `baseUrl` (http://127.0.0.1:<port>), a client of Realmgate at `realmgateUrl`. */
export async function startDemoApp(
  baseUrl: string,
  realmgateUrl: string,
  client: { clientId: string; clientSecret: string },
  options: { idpUrl?: string } = {},
): Promise<{ close(): Promise<void> }> {
  const config = await oidc.discovery(new URL(realmgateUrl), client.clientId, client.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const realmgateKeys = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
  const visits = new Map<string, Visit>();
  const visitOf = (req: Request, res: Response): Visit => {
    let sid = cookieOf(req);
    if (!sid || !visits.has(sid)) {
      sid = crypto.randomUUID();
      visits.set(sid, {});
      res.cookie(COOKIE, sid, { httpOnly: true, sameSite: 'lax', path: '/' });
    }
    return visits.get(sid)!;
  };

  const app = express();
  app.get('/', (req, res) => {
    const visit = visitOf(req, res);
    if (!visit.claims) {
      return void res.type('html').send(
        page(`<p>You are not signed in. This application trusts <strong>Realmgate</strong>, which sends you to the right identity provider.</p>
<p><a class="button" href="/login">Sign in</a>
<a class="button" href="/login?login_hint=ada@demo.example">Sign in as ada@demo.example (login_hint)</a>
<a class="button" href="/login?idp_hint=demo-idp">Sign in with idp_hint=demo-idp</a></p>`),
      );
    }
    res.type('html').send(
      page(`<p>Signed in as <strong>${escape(String(visit.userinfo?.name ?? visit.userinfo?.email ?? visit.claims.sub))}</strong>
through <strong>${escape(String(visit.claims.idp))}</strong> (amr: ${escape(JSON.stringify(visit.claims.amr))}).</p>
<h2>ID token claims</h2><pre><code>${escape(JSON.stringify(visit.claims, null, 2))}</code></pre>
<h2>UserInfo</h2><pre><code>${escape(JSON.stringify(visit.userinfo, null, 2))}</code></pre>
<p><a class="button" href="/logout">Sign out</a> <a class="button" href="/login?prompt=login">Sign in again</a>
${options.idpUrl ? `<a class="button" href="${escape(options.idpUrl)}/session/end">Sign out at the Demo IdP only</a>` : ''}</p>
<p>Signing out here signs you out of Realmgate and the Demo IdP. Signing out at the Demo IdP only
makes it tell Realmgate (back-channel logout), which tells this application: reload this page after it.</p>`),
    );
  });

  app.get('/login', async (req, res) => {
    const visit = visitOf(req, res);
    const pending = { codeVerifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    visit.pending = pending;
    const extra = Object.fromEntries(
      ['login_hint', 'idp_hint', 'prompt'].flatMap((name) => (typeof req.query[name] === 'string' ? [[name, req.query[name] as string]] : [])),
    );
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${baseUrl}/callback`,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      ...extra,
    });
    res.redirect(url.href);
  });

  app.get('/callback', async (req, res) => {
    const visit = visitOf(req, res);
    const pending = visit.pending;
    visit.pending = undefined;
    if (!pending) return void res.redirect('/');
    try {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(req.originalUrl, baseUrl), {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
      });
      const claims = tokens.claims()!;
      visit.idToken = tokens.id_token;
      visit.claims = { ...claims };
      visit.userinfo = { ...(await oidc.fetchUserInfo(config, tokens.access_token, claims.sub)) };
      res.redirect('/');
    } catch (error) {
      const e = error as { error?: string; error_description?: string; message: string };
      res.status(400).type('html').send(page(`<p>Sign-in did not complete: <strong>${escape(e.error ?? e.message)}</strong> ${escape(e.error_description ?? '')}</p><p><a class="button" href="/">Back</a></p>`));
    }
  });

  // Back-channel logout from Realmgate: a signed logout token naming the session (sid) that ended.
  app.post('/backchannel-logout', express.urlencoded({ extended: false }), async (req, res) => {
    try {
      const token = String((req.body as Record<string, unknown>).logout_token ?? '');
      const { payload } = await jose.jwtVerify(token, realmgateKeys, { issuer: config.serverMetadata().issuer, audience: client.clientId, typ: 'logout+jwt' });
      if (!(payload.events as Record<string, unknown> | undefined)?.['http://schemas.openid.net/event/backchannel-logout']) throw new Error('not a logout token');
      for (const visit of visits.values()) {
        if (visit.claims && (visit.claims.sid === payload.sid || (!payload.sid && visit.claims.sub === payload.sub))) {
          delete visit.claims;
          delete visit.idToken;
          delete visit.userinfo;
        }
      }
      res.status(200).set('cache-control', 'no-store').end();
    } catch (error) {
      res.status(400).json({ error: 'invalid_request', error_description: (error as Error).message });
    }
  });

  app.get('/logout', (req, res) => {
    const visit = visitOf(req, res);
    const idToken = visit.idToken;
    delete visit.claims;
    delete visit.idToken;
    delete visit.userinfo;
    const url = oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: `${baseUrl}/`, ...(idToken ? { id_token_hint: idToken } : {}) });
    res.redirect(url.href);
  });

  return serve(app, baseUrl);
}
