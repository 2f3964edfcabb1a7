import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamRequestError } from '../../providers/types.ts';
import { createUpstreamFetch, isPrivateAddress } from '../../src/federation/upstream-fetch.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { addOidcProvider, registerApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, type UpstreamIdp } from '../support/upstream-idp.ts';

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1',
    '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::127.0.0.1',
  ])('refuses %s', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });
});

let target: http.Server;
let targetUrl: string;

beforeAll(async () => {
  target = http.createServer((req, res) => {
    if (req.url === '/redirect') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    if (req.url === '/silent') return;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
});

afterAll(async () => {
  target.closeAllConnections();
  await new Promise((resolve) => target.close(resolve));
});

describe('the guarded upstream fetch', () => {
  const guarded = createUpstreamFetch({ allowPrivateNetwork: false, timeoutMs: 5000 });
  const refused = async (url: string, f = guarded) => {
    const error = await f(url).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamRequestError);
    return error as UpstreamRequestError;
  };

  it('refuses loopback, private and link-local hosts, by literal or by name', async () => {
    expect((await refused(`${targetUrl}/`)).reason).toBe('blocked');
    expect((await refused('http://[::1]:1/')).reason).toBe('blocked');
    expect((await refused('http://169.254.169.254/latest/meta-data/')).reason).toBe('blocked');
    expect((await refused('http://localhost:1/')).reason).toBe('blocked');
    const resolver = createUpstreamFetch({ allowPrivateNetwork: false, timeoutMs: 5000, resolve: async () => ['203.0.113.9', '10.0.0.7'] });
    expect((await refused('https://idp.example.com/', resolver)).message).toMatch(/10\.0\.0\.7.*REALMGATE_ALLOW_PRIVATE_NETWORK/);
  });

  it('refuses schemes other than http and https even when private networks are allowed', async () => {
    const open = createUpstreamFetch({ allowPrivateNetwork: true, timeoutMs: 5000 });
    expect((await refused('file:///etc/passwd', open)).reason).toBe('blocked');
  });

  it('reaches private hosts when the operator allows it, and hands redirects back instead of following them', async () => {
    const open = createUpstreamFetch({ allowPrivateNetwork: true, timeoutMs: 5000 });
    expect(await (await open(`${targetUrl}/`)).json()).toEqual({ ok: true });
    const redirect = await open(`${targetUrl}/redirect`);
    expect(redirect.status).toBe(302);
  });

  it('gives up on a host that does not answer within the timeout', async () => {
    const quick = createUpstreamFetch({ allowPrivateNetwork: true, timeoutMs: 200 });
    expect((await refused(`${targetUrl}/silent`, quick)).reason).toBe('timeout');
  });
});

describe('a node that refuses private networks (the default)', () => {
  let database: TestDatabase;
  let server: TestServer;
  let idp: UpstreamIdp;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startTestServer(database.db, { REALMGATE_ALLOW_PRIVATE_NETWORK: 'false' });
    idp = await startUpstreamIdp();
    await addOidcProvider(server.node, server.url, idp, { alias: 'internal', displayName: 'Internal IdP' });
  });

  afterAll(async () => {
    await server?.close();
    await idp?.close();
    await database?.close();
  });

  it('does not fetch discovery from a loopback issuer and shows the provider as unavailable', async () => {
    const app = await registerApp(server.node, server.url, 'web', { local_login: false });
    const before = idp.hits.get('/.well-known/openid-configuration') ?? 0;
    const { url } = await app.authorizationUrl({ idp_hint: 'internal' });
    const page = await new HttpSession().follow(url, {}, app.redirectUri);
    expect(page.status).toBe(503);
    expect(page.body).toMatch(/Sign-in with Internal IdP is not available right now/);
    expect(idp.hits.get('/.well-known/openid-configuration') ?? 0).toBe(before);
  });
});
