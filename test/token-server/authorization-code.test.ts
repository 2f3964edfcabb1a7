import * as oidc from 'openid-client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { discoverAs, passwordLogin, startLogin, submitPassword } from '../support/login.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const APP = 'http://127.0.0.1:1/app/callback';

let database: TestDatabase;
let server: TestServer;
let accountId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db);
  accountId = (await addUser(server.node, { email: 'ada@example.com', password: 'correct horse battery', name: 'Ada Lovelace' })).id;
  await addClient(server.node, {
    client_id: 'web',
    client_name: 'Web App',
    redirect_uris: [APP],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    require_consent: false,
  }, 'web-secret-web-secret');
});

afterAll(async () => {
  await server?.close();
  await database?.close();
});

const discover = () => discoverAs(server.url, 'web', 'web-secret-web-secret');
const login = (config: oidc.Configuration) =>
  passwordLogin(config, { redirectUri: APP, email: 'ada@example.com', password: 'correct horse battery', params: { prompt: 'consent' } });

describe('authorization code with PKCE for a local account', () => {
  it('signs a local user in and issues tokens whose ID token verifies against the JWKS', async () => {
    const config = await discover();
    const { tokens } = await login(config);

    const jwks = jose.createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token!, jwks, { issuer: server.url, audience: 'web' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe(accountId);
    expect(payload.idp).toBe('local');
    expect(payload.amr).toEqual(['pwd']);
    expect(payload.email).toBeUndefined();

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, accountId);
    expect(userinfo).toMatchObject({ sub: accountId, email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', idp: 'local', amr: ['pwd'] });
  });

  it('rotates refresh tokens and rejects reuse of an old one', async () => {
    const config = await discover();
    const { tokens: first } = await login(config);
    expect(first.refresh_token).toBeTruthy();

    const second = await oidc.refreshTokenGrant(config, first.refresh_token!);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.claims()?.idp).toBe('local');

    await expect(oidc.refreshTokenGrant(config, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Reuse of a rotated token revokes the whole grant, the newer refresh token included.
    await expect(oidc.refreshTokenGrant(config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('introspects and revokes an access token', async () => {
    const config = await discover();
    const { tokens } = await login(config);

    const active = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(active).toMatchObject({ active: true, sub: accountId, client_id: 'web' });

    await oidc.tokenRevocation(config, tokens.access_token);
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: false });
    await expect(oidc.fetchUserInfo(config, tokens.access_token, accountId)).rejects.toBeTruthy();
  });

  it('rejects a replayed authorization code', async () => {
    const config = await discover();
    const { page, browser, codeVerifier, state, nonce } = await startLogin(config, { redirectUri: APP });
    const callback = await submitPassword(browser, page, 'ada@example.com', 'correct horse battery', APP);
    const checks = { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce };
    const tokens = await oidc.authorizationCodeGrant(config, callback.url, checks);
    await expect(oidc.authorizationCodeGrant(config, callback.url, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Replaying a code revokes what it issued.
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: false });
  });

  it('lets exactly one of several simultaneous redemptions of a code through, and revokes the grant', async () => {
    const config = await discover();
    const { page, browser, codeVerifier, state, nonce } = await startLogin(config, { redirectUri: APP });
    const callback = await submitPassword(browser, page, 'ada@example.com', 'correct horse battery', APP);
    const checks = { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce };
    // All found the code unused before any marked it: the consume itself decides.
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => oidc.authorizationCodeGrant(config, callback.url, checks)));
    const issued = results.filter((r) => r.status === 'fulfilled');
    expect(issued).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ error: 'invalid_grant' });
    // A redemption was refused as a replay, so what the one that went through got is revoked.
    const { value: tokens } = issued[0] as PromiseFulfilledResult<oidc.TokenEndpointResponse>;
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: false });
    await expect(oidc.fetchUserInfo(config, tokens.access_token, accountId)).rejects.toBeTruthy();
  });
});
