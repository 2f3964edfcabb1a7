import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oidcProviderType } from '../../providers/oidc.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, federatedLogin, registerApp, type TestApp } from '../support/federation.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const alice = UPSTREAM_USERS[0]!;

describe('oidc provider settings', () => {
  const valid = { issuer: 'https://idp.example.com', client_id: 'realmgate' };

  it('accepts minimal settings with a client secret', () => {
    expect(oidcProviderType.check(valid, { client_secret: 's3cret' })).toEqual([]);
    expect(oidcProviderType.check({ ...valid, issuer: 'http://127.0.0.1:8080' }, { client_secret: 's3cret' })).toEqual([]);
  });

  it('reports every problem at once, each with its field', () => {
    const problems = oidcProviderType.check(
      {
        issuer: 'http://idp.example.com/?tenant=1',
        client_id: '',
        scopes: ['email', 'bad scope'],
        token_endpoint_auth_method: 'magic',
        authorization_params: { state: 'fixed', hd: 'example.com' },
        fetch_userinfo: 'yes',
        colour: 'blue',
      },
      { password: 'x' },
    );
    const fields = problems.map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'settings.issuer',
        'settings.client_id',
        'settings.scopes',
        'settings.scopes.1',
        'settings.token_endpoint_auth_method',
        'settings.authorization_params',
        'settings.fetch_userinfo',
        'settings.colour',
        'secrets.password',
      ]),
    );
    expect(problems.find((p) => p.field === 'settings.issuer')!.message).toMatch(/https/);
    expect(problems.find((p) => p.field === 'settings.authorization_params')!.message).toMatch(/may not set state/);
    expect(problems.find((p) => p.field === 'settings.scopes')!.message).toMatch(/openid/);
  });

  it('asks for the secret the client authentication method needs', () => {
    expect(oidcProviderType.check(valid, {})).toEqual([{ field: 'secrets.client_secret', message: expect.stringMatching(/required/) }]);
    expect(oidcProviderType.check({ ...valid, token_endpoint_auth_method: 'private_key_jwt' }, {})).toEqual([
      { field: 'secrets.private_key', message: expect.stringMatching(/required/) },
    ]);
    expect(oidcProviderType.check({ ...valid, token_endpoint_auth_method: 'private_key_jwt' }, { private_key: 'not a key' })).toEqual([
      { field: 'secrets.private_key', message: expect.stringMatching(/cannot be read/) },
    ]);
    expect(oidcProviderType.check({ ...valid, token_endpoint_auth_method: 'none' }, {})).toEqual([]);
  });
});

let database: TestDatabase;
let server: TestServer;
let idp: UpstreamIdp;
let app: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await startTestServer(database.db, { REALMGATE_EXTRA_CLAIMS: 'employee_id, roles' });
  idp = await startUpstreamIdp();
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  await database?.close();
});

describe('oidc providers against a real upstream', () => {
  it('authenticates with client_secret_post', async () => {
    await addOidcProvider(server.node, server.url, idp, {
      alias: 'post',
      settings: { token_endpoint_auth_method: 'client_secret_post' },
      upstreamClient: { token_endpoint_auth_method: 'client_secret_post' },
    });
    expect((await federatedLogin(app, idp, alice, { params: { idp_hint: 'post' } })).claims.idp).toBe('post');
  });

  it('authenticates with private_key_jwt', async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
    const kid = 'realmgate-key-1';
    await addOidcProvider(server.node, server.url, idp, {
      alias: 'pkjwt',
      settings: { token_endpoint_auth_method: 'private_key_jwt' },
      secrets: { private_key: JSON.stringify({ ...(await jose.exportJWK(privateKey)), kid }) },
      upstreamClient: {
        client_secret: undefined,
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid, use: 'sig', alg: 'ES256' }] },
      },
    });
    expect((await federatedLogin(app, idp, alice, { params: { idp_hint: 'pkjwt' } })).claims.idp).toBe('pkjwt');
  });

  it('receives the answer by form_post', async () => {
    await addOidcProvider(server.node, server.url, idp, { alias: 'formpost', settings: { response_mode: 'form_post' } });
    const { claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'formpost' } });
    expect(claims.idp).toBe('formpost');
  });

  it('fetches profile claims from userinfo only when fetch_userinfo is on', async () => {
    await addOidcProvider(server.node, server.url, idp, { alias: 'noinfo', settings: { fetch_userinfo: false } });
    const { claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'noinfo' } });
    const account = await server.node.services.accounts.get(String(claims.sub));
    // oidc-provider puts profile claims in userinfo only: without it the account has none.
    expect(account).toMatchObject({ email: null, name: null });
  });

  it('maps upstream claims to local claims per provider, with OpenID Connect defaults for the rest', async () => {
    await addOidcProvider(server.node, server.url, idp, {
      alias: 'mapped',
      settings: { scopes: ['openid', 'email', 'profile', 'groups'] },
      claimMappings: { family_name: 'name', groups: 'roles', sub: 'employee_id' },
      linkingPolicy: { emailTrust: 'any' },
    });
    const { claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'mapped' } });
    const account = await server.node.services.accounts.get(String(claims.sub));
    expect(account).toMatchObject({ email: alice.email, emailVerified: true, name: 'Example', givenName: 'Alice', familyName: 'Example' });
    expect(account!.claims).toEqual({ roles: alice.groups, groups: alice.groups, employee_id: alice.sub });
    // A verified account for alice would ask the next tests' logins to confirm a link: remove it.
    await server.node.services.accounts.delete(account!.id);
  });

  it('releases the mapped claims the operator lists in REALMGATE_EXTRA_CLAIMS with the profile scope', async () => {
    await addOidcProvider(server.node, server.url, idp, {
      alias: 'released',
      settings: { scopes: ['openid', 'email', 'profile', 'groups'] },
      claimMappings: { groups: 'roles', sub: 'employee_id', given_name: 'not_listed' },
    });
    const { tokens, claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'released' } });
    const userinfo = await oidc.fetchUserInfo(app.config, tokens.access_token, String(claims.sub));
    expect(userinfo).toMatchObject({ employee_id: alice.sub, roles: alice.groups, groups: alice.groups, idp: 'released' });
    // Mapped and stored on the account, but not released: the operator did not list it.
    expect((await server.node.services.accounts.get(String(claims.sub)))!.claims.not_listed).toBe('Alice');
    expect(userinfo.not_listed).toBeUndefined();
  });

  it('follows the upstream’s signing key rotation', async () => {
    await addOidcProvider(server.node, server.url, idp, { alias: 'rotating' });
    const first = await federatedLogin(app, idp, alice, { params: { idp_hint: 'rotating' } });
    const jwksFetches = idp.hits.get('/jwks') ?? 0;
    const discoveries = idp.hits.get('/.well-known/openid-configuration');
    const oldKid = idp.signingKid;

    await idp.rotateSigningKey();
    expect(idp.signingKid).not.toBe(oldKid);
    const second = await federatedLogin(app, idp, alice, { params: { idp_hint: 'rotating' } });
    expect(second.claims.sub).toBe(first.claims.sub);
    // The unknown kid made Realmgate fetch the JWKS again, without reopening the provider.
    expect(idp.hits.get('/jwks')).toBe(jwksFetches + 1);
    expect(idp.hits.get('/.well-known/openid-configuration')).toBe(discoveries);
  });

});
