import crypto from 'node:crypto';
import * as oidc from 'openid-client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openServices } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addClient, addUser } from '../support/fixtures.ts';
import { discoverAs, passwordLogin } from '../support/login.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { pino } from 'pino';

const APP = 'http://127.0.0.1:1/app/callback';

let database: TestDatabase;
let a: TestServer;
let b: TestServer;

beforeAll(async () => {
  database = await createTestDatabase();
  a = await startTestServer(database.db);
  b = await startTestServer(database.db, { REALMGATE_KEY_REFRESH_SECONDS: '1' });
  await addUser(a.node, { email: 'katherine@example.com', password: 'orbital-mechanics' });
  for (const node of [a, b]) {
    await addClient(node.node, {
      client_id: `app-${node.config.port}`,
      redirect_uris: [APP],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      require_consent: false,
    }, 'app-secret-app-secret');
  }
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.close();
});

async function kids(url: string): Promise<string[]> {
  const res = await fetch(`${url}/jwks`);
  return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
}

/** Polls (bounded) until `check` passes; for changes another node makes asynchronously. */
async function eventually(check: () => Promise<boolean>, attempts = 100): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('condition never became true');
}

describe('signing keys shared through the database', () => {
  it('generates an ES256 and an RS256 key on first start and serves the same set from every node', async () => {
    const jwks = (await (await fetch(`${a.url}/jwks`)).json()) as { keys: jose.JWK[] };
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    expect(jwks.keys.every((k) => k.d === undefined && k.p === undefined)).toBe(true);
    expect((await kids(b.url)).sort()).toEqual((await kids(a.url)).sort());
    const sealed = await database.db('signing_keys').select('sealed_jwk');
    expect(sealed.every((r: { sealed_jwk: string }) => r.sealed_jwk.startsWith('v1.') && !r.sealed_jwk.includes('"d"'))).toBe(true);
  });

  it('serves a key rotated on one node from another, keeps the old key published, and signs with the new one', async () => {
    const before = await kids(b.url);
    const rotated = await a.node.services.keys.rotate();
    await eventually(async () => rotated.every((k) => k !== undefined) && (await kids(b.url)).includes(rotated[1]!));
    const after = await kids(b.url);
    expect(after).toEqual(expect.arrayContaining([...before, ...rotated]));

    const config = await discoverAs(b.url, `app-${b.config.port}`, 'app-secret-app-secret');
    const { tokens } = await passwordLogin(config, { redirectUri: APP, email: 'katherine@example.com', password: 'orbital-mechanics', scope: 'openid' });
    const header = jose.decodeProtectedHeader(tokens.id_token!);
    expect(rotated).toContain(header.kid);
    await jose.jwtVerify(tokens.id_token!, jose.createRemoteJWKSet(new URL(`${b.url}/jwks`)), { issuer: b.url });
  });
});

describe('state lives in the database, not in a node', () => {
  it('accepts on one node a refresh token another node issued, after that node stopped', async () => {
    const c = await startTestServer(database.db);
    const clientId = `app-${c.config.port}`;
    await addClient(c.node, { client_id: clientId, redirect_uris: [APP], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', require_consent: false }, 'app-secret-app-secret');
    const onC = await discoverAs(c.url, clientId, 'app-secret-app-secret');
    const { tokens } = await passwordLogin(onC, { redirectUri: APP, email: 'katherine@example.com', password: 'orbital-mechanics', scope: 'openid offline_access', params: { prompt: 'consent' } });
    await c.close();
    // Let the HTTP client notice the closed keep-alive sockets before a new node takes the port.
    await eventually(async () => fetch(`${c.url}/healthz`).then(() => false, (e: { cause?: { code?: string } }) => e.cause?.code === 'ECONNREFUSED'));

    // Same issuer, new node on the same port and database: a restart.
    const restarted = await startTestServer(database.db, { PORT: String(c.config.port), ISSUER: c.url });
    try {
      const config = await discoverAs(restarted.url, clientId, 'app-secret-app-secret');
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.claims()?.sub).toBe(tokens.claims()?.sub);
    } finally {
      await restarted.close();
    }
  });

  it('refuses to start with a master key other than the one the database was sealed with', async () => {
    const config = loadConfig({ REALMGATE_MASTER_KEY: crypto.randomBytes(32).toString('base64'), DATA_DIR: '/tmp/unused-realmgate', LOG_LEVEL: 'silent' });
    await expect(openServices(config, { db: database.db, skipMigrations: true, logger: pino({ level: 'silent' }) })).rejects.toThrow(
      /REALMGATE_MASTER_KEY does not match the key this database was sealed with/,
    );
  });
});
