import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { addClient } from './support/fixtures.ts';
import { addSamlProvider } from './support/saml-federation.ts';
import { TestSamlIdp } from './support/saml-idp.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const APP = 'http://127.0.0.1:1/cb';
const FORGED = 'evil.example';

let database: TestDatabase;
let idp: TestSamlIdp;
/** Issuer http://127.0.0.1:port, no proxy trusted. */
let direct: TestServer;
/** Issuer https://login.example.test behind a TLS proxy (X-Forwarded-* trusted, one hop). */
let proxied: TestServer;

/** A raw request to `server` (always 127.0.0.1) with whatever Host, forwarded headers and request target a client sends. */
function send(server: TestServer, target: string, headers: Record<string, string>): Promise<{ status: number; location: string | undefined; body: string }> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every absolute URL in a text: JSON values, XML attributes, HTML attributes. */
const urlsIn = (text: string): string[] => [...text.matchAll(/https?:\/\/[^\s"'<>]+/g)].map((m) => m[0]);

const forgeries = {
  'a forged Host header': { host: FORGED },
  'forged X-Forwarded-Host and X-Forwarded-Proto headers': { host: FORGED, 'x-forwarded-host': FORGED, 'x-forwarded-proto': 'http', forwarded: `host=${FORGED};proto=http` },
};

beforeAll(async () => {
  database = await createTestDatabase();
  direct = await startTestServer(database.db);
  proxied = await startTestServer(database.db, { ISSUER: 'https://login.example.test' });
  await addClient(direct.node, { client_id: 'web', redirect_uris: [APP], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }, 'web-secret-web-secret');
  idp = await TestSamlIdp.create('https://idp.corp.example/saml');
  await addSamlProvider(direct.node, idp, { alias: 'corp' });
});

afterAll(async () => {
  await direct?.close();
  await proxied?.close();
  await idp?.close();
  await database?.close();
});

describe.each(Object.entries(forgeries))('every URL Realmgate hands out starts with ISSUER, whatever %s says', (_name, headers) => {
  const servers = () => [direct, proxied];

  it('in discovery', async () => {
    for (const server of servers()) {
      const res = await send(server, '/.well-known/openid-configuration', headers);
      expect(res.status).toBe(200);
      const urls = urlsIn(res.body).filter((u) => !u.startsWith('http://openid.net/') && !u.startsWith('https://openid.net/'));
      expect(urls.length).toBeGreaterThan(5);
      for (const url of urls) expect(url.startsWith(`${server.config.issuer}/`) || url === server.config.issuer, url).toBe(true);
      expect(JSON.parse(res.body)).toMatchObject({ issuer: server.config.issuer, authorization_endpoint: `${server.config.issuer}/auth` });
    }
  });

  it('in discovery asked for with an absolute-form request target naming another host', async () => {
    for (const server of servers()) {
      const res = await send(server, `http://${FORGED}/.well-known/openid-configuration`, headers);
      expect(JSON.parse(res.body)).toMatchObject({ issuer: server.config.issuer, token_endpoint: `${server.config.issuer}/token` });
      expect(res.body).not.toContain(FORGED);
    }
  });

  it('in the redirect from /auth to the login page', async () => {
    for (const server of servers()) {
      const query = new URLSearchParams({ client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: APP, state: 'abc' });
      const res = await send(server, `/auth?${query}`, headers);
      expect(res.status).toBe(303);
      expect(res.location).toMatch(new RegExp(`^${server.config.issuer.replace(/[.:/]/g, '\\$&')}/interaction/[\\w-]+$`));
    }
  });

  it('in the logout confirmation form', async () => {
    for (const server of servers()) {
      const res = await send(server, '/session/end', headers);
      expect(res.status).toBe(200);
      expect(res.body).toContain(`action="${server.config.issuer}/session/end/confirm"`);
      expect(res.body).not.toContain(FORGED);
    }
  });

  it('in SAML SP metadata', async () => {
    const res = await send(direct, '/federation/corp/saml/metadata', headers);
    expect(res.status).toBe(200);
    const urls = urlsIn(res.body).filter((u) => !/^http:\/\/www\.w3\.org\/|^urn:|^http:\/\/schemas\.|oasis/.test(u));
    expect(urls).toContain(`${direct.config.issuer}/federation/corp/saml/acs`);
    for (const url of urls) expect(url.startsWith(`${direct.config.issuer}/`), url).toBe(true);
  });
});
