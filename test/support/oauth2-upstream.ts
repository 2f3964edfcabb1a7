import express from 'express';
import type { Realmgate } from '../../src/app.ts';
import type { ProviderInput } from '../../src/store/providers.ts';
import { upstreamClientFor } from './federation.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp, type UpstreamUser } from './upstream-idp.ts';

/** A person's GitHub-shaped profile at the OAuth 2.0 test upstream. */
export interface GitHubProfile {
  id: number;
  login: string;
  name: string | null;
  /** The public email of /user (GitHub leaves it null when the person keeps it private). */
  email: string | null;
  emails: { email: string; primary: boolean; verified: boolean; visibility: string | null }[];
}

/** The profiles of the upstream's two users, by their `sub` at the authorization server. */
export const GITHUB_PROFILES: Readonly<Record<string, GitHubProfile>> = {
  [UPSTREAM_USERS[0]!.sub]: {
    id: 1001,
    login: 'alice-octo',
    name: 'Alice Octo',
    email: null,
    emails: [
      { email: 'alice-old@elsewhere.example', primary: false, verified: true, visibility: null },
      { email: UPSTREAM_USERS[0]!.email, primary: true, verified: true, visibility: 'private' },
    ],
  },
  [UPSTREAM_USERS[1]!.sub]: {
    id: 1002,
    login: 'bob-octo',
    name: 'Bob Octo',
    email: UPSTREAM_USERS[1]!.email,
    emails: [{ email: UPSTREAM_USERS[1]!.email, primary: true, verified: true, visibility: 'public' }],
  },
};

/** Ways a test makes the API misbehave; every field is off unless set. */
export interface ApiTampering {
  /** /user answers without `id`. */
  noSubject?: boolean;
  /** /user/emails marks every address unverified. */
  unverifiedEmails?: boolean;
}

/**
 * A plain OAuth 2.0 authorization server (oidc-provider with no OpenID Connect scope: no ID
 * token) on 127.0.0.1, with a GitHub-shaped API beside it that takes its access tokens:
 * `GET /api/user` and `GET /api/user/emails`.
 */
export interface OAuth2Upstream {
  readonly idp: UpstreamIdp;
  readonly issuer: string;
  readonly users: readonly UpstreamUser[];
  readonly tamper: ApiTampering;
  /** The settings of an `oauth2` provider pointing at it. */
  settings(clientId: string): Record<string, unknown>;
  close(): Promise<void>;
}

/** Starts the OAuth 2.0 test upstream. */
export async function startOAuth2Upstream(): Promise<OAuth2Upstream> {
  const tamper: ApiTampering = {};
  const idp = await startUpstreamIdp({
    scopes: ['read:user', 'user:email'],
    pkceRequired: false,
    routes: (provider) => {
      const router = express.Router();
      const profileOf = async (req: express.Request): Promise<GitHubProfile | undefined> => {
        const token = /^Bearer (\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
        const found = token ? await provider().AccessToken.find(token) : undefined;
        return found?.accountId ? GITHUB_PROFILES[found.accountId] : undefined;
      };
      router.get('/api/user', async (req, res) => {
        const profile = await profileOf(req);
        if (!profile) return void res.status(401).json({ message: 'Bad credentials' });
        const { emails: _emails, ...user } = profile;
        res.json(tamper.noSubject ? { ...user, id: undefined } : user);
      });
      router.get('/api/user/emails', async (req, res) => {
        const profile = await profileOf(req);
        if (!profile) return void res.status(401).json({ message: 'Bad credentials' });
        res.json(tamper.unverifiedEmails ? profile.emails.map((e) => ({ ...e, verified: false })) : profile.emails);
      });
      return router;
    },
  });
  return {
    idp,
    issuer: idp.issuer,
    users: idp.users,
    tamper,
    settings: (clientId) => ({
      client_id: clientId,
      authorization_endpoint: `${idp.issuer}/auth`,
      token_endpoint: `${idp.issuer}/token`,
      userinfo_endpoint: `${idp.issuer}/api/user`,
      emails_endpoint: `${idp.issuer}/api/user/emails`,
      scopes: ['read:user', 'user:email'],
      pkce: true,
    }),
    close: () => idp.close(),
  };
}

/** Stores an `oauth2` provider pointing at `upstream` and registers Realmgate as its client. */
export async function addOAuth2Provider(
  node: Realmgate,
  serverUrl: string,
  upstream: OAuth2Upstream,
  input: { alias: string; displayName?: string; domains?: string[]; settings?: Record<string, unknown>; linkingPolicy?: ProviderInput['linkingPolicy'] },
): Promise<void> {
  const { clientId, clientSecret } = upstreamClientFor(input.alias);
  upstream.idp.addClient({ client_id: clientId, client_secret: clientSecret, redirect_uris: [`${serverUrl}/federation/${input.alias}/callback`] });
  const provider: ProviderInput = {
    alias: input.alias,
    kind: 'oauth2',
    displayName: input.displayName ?? `${input.alias} social`,
    enabled: true,
    domains: input.domains ?? [],
    settings: { ...upstream.settings(clientId), ...input.settings },
    secrets: { client_secret: clientSecret },
    claimMappings: {},
    linkingPolicy: input.linkingPolicy,
  };
  await node.services.store.transaction((tx) => tx.providers.create(provider));
}
