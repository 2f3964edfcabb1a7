/**
 * The demo's external identity provider: a real oidc-provider with two people and a tiny sign-in
 * page, standing in for a company's IdP (Entra ID, Okta, Keycloak...). Everything is in memory.
 */
import crypto from 'node:crypto';
import { serve } from './serve.ts';
import express from 'express';
import * as jose from 'jose';
import Provider, { type ClientMetadata, type Configuration } from 'oidc-provider';

/** A person who can sign in at the demo IdP. */
export interface DemoUser {
  sub: string;
  email: string;
  password: string;
  name: string;
  given_name: string;
  family_name: string;
  groups: string[];
}

/** The demo IdP's two people. */
export const DEMO_USERS: readonly DemoUser[] = [
  { sub: 'ada', email: 'ada@demo.example', password: 'ada-password', name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', groups: ['engineering'] },
  { sub: 'grace', email: 'grace@demo.example', password: 'grace-password', name: 'Grace Hopper', given_name: 'Grace', family_name: 'Hopper', groups: ['engineering', 'admirals'] },
];

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:16px system-ui,sans-serif;background:#fdf6e3;display:grid;place-items:center;min-height:100vh;margin:0}
main{background:#fff;border:2px solid #b58900;border-radius:12px;padding:2rem;width:min(380px,92vw)}
h1{color:#b58900;margin-top:0}label{display:grid;gap:.25rem;margin:.6rem 0}input{font:inherit;padding:.45rem}
button{font:inherit;padding:.55rem 1rem;margin-top:.6rem;border:0;border-radius:8px;background:#b58900;color:#fff;width:100%}
.cancel{background:none;color:#b58900}table{font-size:.85rem;margin-top:1rem}td{padding:0 .4rem}</style></head>
<body><main>${body}</main></body></html>`;
}

function loginPage(uid: string, error?: string): string {
  const rows = DEMO_USERS.map((u) => `<tr><td>${escape(u.email)}</td><td><code>${escape(u.password)}</code></td></tr>`).join('');
  return page(
    'Demo IdP sign-in',
    `<h1>Demo IdP</h1><p>This is the <em>upstream</em> identity provider Realmgate sent you to.</p>
${error ? `<p role="alert" style="color:#dc322f">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Email <input name="login" id="login" autocomplete="username" autofocus></label>
<label>Password <input type="password" name="password" id="password" autocomplete="current-password"></label>
<button type="submit">Sign in at Demo IdP</button></form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button class="cancel" type="submit">Cancel</button></form>
<table><tr><th>Demo user</th><th>Password</th></tr>${rows}</table>`,
  );
}

/** Starts the demo IdP on `issuer` (http://127.0.0.1:<port>) with Realmgate registered as `client`. */
export async function startDemoIdp(issuer: string, client: ClientMetadata): Promise<{ close(): Promise<void> }> {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
  const configuration: Configuration = {
    clients: [client],
    // Back-channel logout tokens go to Realmgate on 127.0.0.1, which oidc-provider's SSRF protection refuses by default.
    fetch: (url, options) => {
      delete (options as { dispatcher?: unknown }).dispatcher;
      return globalThis.fetch(url, options);
    },
    jwks: { keys: [jwk as NonNullable<Configuration['jwks']>['keys'][number]] },
    // Browsers scope cookies by host, not port: names of its own so they never collide with Realmgate's.
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')], names: { session: '_demo_idp_session', interaction: '_demo_idp_interaction', resume: '_demo_idp_resume' } },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'], groups: ['groups'] },
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
    features: { devInteractions: { enabled: false }, backchannelLogout: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    loadExistingGrant: async (ctx) => {
      // Consent is implied at the demo IdP.
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
      await grant.save();
      return grant;
    },
    findAccount: async (_ctx, sub) => {
      const user = DEMO_USERS.find((u) => u.sub === sub);
      if (!user) return undefined;
      const { password: _password, ...claims } = user;
      return { accountId: sub, claims: async () => ({ ...claims, email_verified: true }) };
    },
  };
  const provider = new Provider(issuer, configuration);
  const app = express();
  const form = express.urlencoded({ extended: false });
  app.get('/interaction/:uid', async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    res.type('html').send(loginPage(details.uid));
  });
  app.post('/interaction/:uid/login', form, async (req, res) => {
    const details = await provider.interactionDetails(req, res);
    const { login, password } = req.body as { login?: string; password?: string };
    const user = DEMO_USERS.find((u) => u.email === login?.trim().toLowerCase() && u.password === password);
    if (!user) return void res.status(401).type('html').send(loginPage(details.uid, 'Wrong email or password.'));
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  });
  app.post('/interaction/:uid/abort', async (req, res) => {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled.' }, { mergeWithLastSubmission: false });
  });
  app.use(provider.callback());

  return serve(app, issuer);
}
