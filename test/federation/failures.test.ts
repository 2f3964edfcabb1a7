import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  addOidcProvider,
  federatedLogin,
  isUpstreamLogin,
  loginFootprint,
  redirectTo,
  registerApp,
  signInUpstream,
  type TestApp,
} from '../support/federation.ts';
import { HttpSession, type PageResponse } from '../support/http-session.ts';
import { freePort, startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const alice = UPSTREAM_USERS[0]!;

let database: TestDatabase;
let server: TestServer;
let idp: UpstreamIdp;
let app: TestApp;
let silent: http.Server;

beforeAll(async () => {
  database = await createTestDatabase();
  // A short upstream timeout so the slow-upstream cases end quickly; local upstreams answer in milliseconds.
  server = await startTestServer(database.db, { REALMGATE_UPSTREAM_TIMEOUT_MS: '1500' });
  idp = await startUpstreamIdp();
  // Accepts connections and never answers.
  silent = http.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  await addOidcProvider(server.node, server.url, idp, { alias: 'acme', displayName: 'Acme Corp' });
  await addOidcProvider(server.node, server.url, idp, { alias: 'down', displayName: 'Down Inc', settings: { issuer: `http://127.0.0.1:${await freePort()}` } });
  await addOidcProvider(server.node, server.url, idp, { alias: 'slow', displayName: 'Slow Ltd', settings: { issuer: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` } });
  await addOidcProvider(server.node, server.url, idp, { alias: 'stale', displayName: 'Stale Secret', secrets: { client_secret: 'not-the-secret-the-upstream-knows' } });
  app = await registerApp(server.node, server.url, 'web', { local_login: false });
});

afterAll(async () => {
  await server?.close();
  await idp?.close();
  silent?.closeAllConnections();
  await new Promise((resolve) => silent?.close(resolve));
  await database?.close();
});

/** Asserts an error page with a reference and the given sentence. */
function expectErrorPage(page: PageResponse, status: number, sentence: RegExp): void {
  expect(page.status).toBe(status);
  expect(page.url.origin).toBe(server.url);
  expect(page.body).toMatch(sentence);
  expect(page.body).toMatch(/quote reference <code class="ref">[2-9A-Z]{4}-[2-9A-Z]{2}<\/code>/);
}

/** Starts a login at `alias` and returns the browser at the upstream's sign-in form. */
async function atUpstream(alias: string, params: Record<string, string> = {}) {
  const browser = new HttpSession();
  const { url, state } = await app.authorizationUrl({ idp_hint: alias, ...params });
  const page = await browser.follow(url, {}, app.redirectUri);
  expect(isUpstreamLogin(page, idp)).toBe(true);
  return { browser, page, state };
}

/** Runs `scenario` and asserts it created no account, link, session or code. */
async function createsNothing(scenario: () => Promise<void>): Promise<void> {
  const before = await loginFootprint(database.db);
  await scenario();
  expect(await loginFootprint(database.db)).toEqual(before);
}

describe('an upstream that cannot be reached', () => {
  it('shows a safe page when discovery fails, and the other providers keep working', async () => {
    await createsNothing(async () => {
      const { url } = await app.authorizationUrl({ idp_hint: 'down' });
      expectErrorPage(await new HttpSession().follow(url, {}, app.redirectUri), 503, /Sign-in with Down Inc is not available right now/);
    });
    const { claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    expect(claims.idp).toBe('acme');
  });

  it('shows a safe page when discovery does not answer in time', async () => {
    await createsNothing(async () => {
      const { url } = await app.authorizationUrl({ idp_hint: 'slow' });
      expectErrorPage(await new HttpSession().follow(url, {}, app.redirectUri), 503, /Sign-in with Slow Ltd is not available right now/);
    });
  });

  it('shows a safe page when the token endpoint does not answer in time', async () => {
    const { browser, page } = await atUpstream('acme');
    await createsNothing(async () => {
      idp.tamper.stallTokenEndpoint = true;
      try {
        expectErrorPage(await signInUpstream(browser, page, alice, app.redirectUri), 504, /Acme Corp did not answer in time/);
      } finally {
        idp.tamper.stallTokenEndpoint = false;
      }
    });
  });
});

describe('an upstream that answers with an error', () => {
  it('returns access_denied to the application when the user cancels upstream', async () => {
    const { browser, page, state } = await atUpstream('acme');
    await createsNothing(async () => {
      const cancel = /<form method="post" action="([^"]*\/abort)"/.exec(page.body)![1]!;
      const back = await browser.submit(new URL(cancel, page.url), {}, app.redirectUri);
      expect(back.status).toBe(0);
      expect(Object.fromEntries(back.url.searchParams)).toMatchObject({ error: 'access_denied', state });
    });
  });

  it('shows a safe page for any other error the upstream returns', async () => {
    const browser = new HttpSession();
    const { url } = await app.authorizationUrl({ idp_hint: 'acme' });
    const upstream = await redirectTo(browser, url, idp.issuer);
    await createsNothing(async () => {
      const callback = new URL(`${server.url}/federation/acme/callback`);
      callback.search = new URLSearchParams({ error: 'temporarily_unavailable', state: upstream.searchParams.get('state')!, iss: idp.issuer }).toString();
      expectErrorPage(await browser.follow(callback), 502, /Acme Corp did not complete your sign-in/);
    });
  });

  it('shows a safe page when the upstream token endpoint refuses Realmgate’s client secret', async () => {
    const { browser, page } = await atUpstream('stale');
    await createsNothing(async () => {
      expectErrorPage(await signInUpstream(browser, page, alice, app.redirectUri), 502, /Stale Secret did not complete your sign-in/);
    });
  });
});

describe('an ID token that does not validate', () => {
  const cases: [string, Parameters<typeof setTamper>[0]][] = [
    ['is signed with a key the upstream does not publish', { signWithForeignKey: true }],
    ['carries another nonce', { idTokenClaims: (c) => ({ ...c, nonce: 'not-the-nonce' }) }],
    ['is for another audience', { idTokenClaims: (c) => ({ ...c, aud: 'someone-else' }) }],
    ['comes from another issuer', { idTokenClaims: (c) => ({ ...c, iss: 'https://evil.example' }) }],
    ['has expired', { idTokenClaims: (c) => ({ ...c, iat: c.iat! - 7200, exp: c.iat! - 3600 }) }],
  ];
  function setTamper(tamper: typeof idp.tamper): void {
    Object.assign(idp.tamper, tamper);
  }

  it.each(cases)('is refused when it %s', async (_name, tamper) => {
    const { browser, page } = await atUpstream('acme');
    await createsNothing(async () => {
      setTamper(tamper);
      try {
        expectErrorPage(await signInUpstream(browser, page, alice, app.redirectUri), 502, /could not verify the answer from Acme Corp/);
      } finally {
        idp.tamper.idTokenClaims = undefined;
        idp.tamper.signWithForeignKey = undefined;
      }
    });
  });
});

describe('a callback that belongs to no login', () => {
  /** Signs in upstream and returns the callback URL the upstream sent the browser to, unfetched. */
  async function upstreamCallback(alias = 'acme') {
    const { browser, page } = await atUpstream(alias);
    const back = await signInUpstream(browser, page, alice, `${server.url}/federation/${alias}/callback`);
    expect(back.status).toBe(0);
    return { browser, callback: back.url };
  }

  it('is refused when the state does not match a login transaction', async () => {
    const { browser, callback } = await upstreamCallback();
    await createsNothing(async () => {
      callback.searchParams.set('state', 'A'.repeat(43));
      expectErrorPage(await browser.follow(callback), 400, /expired or was already completed/);
    });
  });

  it('is refused when it is replayed', async () => {
    const { browser, callback } = await upstreamCallback();
    const first = await browser.follow(callback, {}, app.redirectUri);
    expect(first.status).toBe(0);
    await createsNothing(async () => {
      expectErrorPage(await browser.follow(callback, {}, app.redirectUri), 400, /expired or was already completed/);
    });
  });

  it('is refused when the login transaction has expired', async () => {
    const { browser, callback } = await upstreamCallback();
    await database.db('login_transactions').update({ expires_at: new Date(Date.now() - 1000) });
    await createsNothing(async () => {
      expectErrorPage(await browser.follow(callback), 400, /expired or was already completed/);
    });
  });

  it('is refused for a provider that does not exist', async () => {
    await createsNothing(async () => {
      expectErrorPage(await new HttpSession().follow(`${server.url}/federation/nobody/callback?code=abc&state=${'B'.repeat(43)}`), 404, /provider does not exist/);
    });
  });

  it('is refused for a provider deleted while the user was upstream', async () => {
    await addOidcProvider(server.node, server.url, idp, { alias: 'fleeting', displayName: 'Fleeting' });
    const { browser, callback } = await upstreamCallback('fleeting');
    await server.node.services.store.transaction((tx) => tx.providers.delete('fleeting'));
    await createsNothing(async () => {
      expectErrorPage(await browser.follow(callback), 404, /provider does not exist/);
    });
  });
});
