import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { federatedLogin, registerApp, upstreamClientFor, type TestApp } from '../support/federation.ts';
import { HttpSession } from '../support/http-session.ts';
import { freePort, TEST_MASTER_KEY, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';
import { ADMIN_CLIENT, AdminApi, oidcProviderBody, startAdminNode } from './admin-api.ts';

const [alice] = UPSTREAM_USERS as [(typeof UPSTREAM_USERS)[number]];

/**
 * Two Realmgate nodes on one database: node A in this process, node B a separate
 * `node --import tsx src/main.ts` process. Embedded PGlite is one process's database (it is locked
 * to the process that opened it), so this needs PostgreSQL.
 */
describe.skipIf(!process.env.DATABASE_URL)('two nodes on one PostgreSQL (skipped on PGlite: an embedded database cannot be shared by two processes; set DATABASE_URL)', () => {
  let database: TestDatabase;
  let nodeA: TestServer;
  let nodeB: { url: string; child: ChildProcess; dataDir: string };
  let idp: UpstreamIdp;
  let apiA: AdminApi;
  let appOnB: TestApp;

  /** Starts node B as its own process over the test database and waits until it is ready. */
  async function startNodeB(databaseUrl: string): Promise<{ url: string; child: ChildProcess; dataDir: string }> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-node-b-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PORT: String(port),
        HOST: '127.0.0.1',
        ISSUER: url,
        DATA_DIR: dataDir,
        REALMGATE_MASTER_KEY: TEST_MASTER_KEY,
        REALMGATE_ALLOW_PRIVATE_NETWORK: 'true',
        REALMGATE_ADMIN_CLIENT_ID: ADMIN_CLIENT.id,
        REALMGATE_ADMIN_CLIENT_SECRET: ADMIN_CLIENT.secret,
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    for (let i = 0; i < 300; i++) {
      if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return { url, child, dataDir };
      if (child.exitCode !== null) throw new Error(`node B exited with ${child.exitCode}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`node B did not become ready: ${stderr}`);
  }

  /** Registers Realmgate at the upstream with node B's callback and returns the admin body of the provider. */
  function providerBody(alias: string, secret: string) {
    idp.addClient({ client_id: upstreamClientFor(alias).clientId, client_secret: secret, redirect_uris: [`${nodeB.url}/federation/${alias}/callback`] });
    return oidcProviderBody(alias, idp.issuer, { secret, displayName: 'Initech' });
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    idp = await startUpstreamIdp();
    nodeA = await startAdminNode(database.db);
    nodeB = await startNodeB(database.url!);
    apiA = await AdminApi.connect(nodeA.url);
    appOnB = await registerApp(nodeA.node, nodeB.url, 'portal');
    // Node B has served a login page before the provider exists, so nothing about it is cached there.
    const { url } = await appOnB.authorizationUrl();
    expect((await new HttpSession().follow(url, {}, appOnB.redirectUri)).status).toBe(200);
  });

  afterAll(async () => {
    if (nodeB) {
      const exited = new Promise((resolve) => nodeB.child.once('exit', resolve));
      nodeB.child.kill('SIGTERM');
      await exited;
      fs.rmSync(nodeB.dataDir, { recursive: true, force: true });
    }
    await nodeA?.close();
    await idp?.close();
    await database?.close();
  });

  it('logs in through node B with a provider just added through node A', async () => {
    expect((await apiA.post('/providers', providerBody('initech', 'initech-secret-0123456789'))).status).toBe(201);
    const { claims } = await federatedLogin(appOnB, idp, alice, { params: { idp_hint: 'initech' } });
    expect(claims.iss).toBe(nodeB.url);
    expect(claims.idp).toBe('initech');
    // Node B's admin API sees the same provider and version.
    const apiB = await AdminApi.connect(nodeB.url);
    expect((await apiB.get('/providers/initech')).headers.get('etag')).toBe('"1"');
  });

  it('uses a secret rotated through node A on node B\'s next login', async () => {
    const { clientId } = upstreamClientFor('initech');
    idp.addClient({ client_id: clientId, client_secret: 'initech-rotated-0123456789', redirect_uris: [`${nodeB.url}/federation/initech/callback`] });
    await expect(federatedLogin(appOnB, idp, alice, { params: { idp_hint: 'initech' } })).rejects.toThrow(/did not reach the application/);
    expect((await apiA.patch('/providers/initech', { secrets: { client_secret: 'initech-rotated-0123456789' } })).status).toBe(200);
    expect((await federatedLogin(appOnB, idp, alice, { params: { idp_hint: 'initech' } })).claims.idp).toBe('initech');
  });

  it('takes a client secret rotated through node A on node B, which trusts its cached client until told of the change', async () => {
    const token = (secret: string) =>
      fetch(`${nodeB.url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`batch:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      }).then((r) => r.status);
    const client = { client_id: 'batch', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' };
    expect((await apiA.post('/clients', { ...client, client_secret: 'batch-secret-one-0123456789' })).status).toBe(201);
    expect(await token('batch-secret-one-0123456789')).toBe(200);
    expect((await apiA.patch('/clients/batch', { client_secret: 'batch-secret-two-0123456789' })).status).toBe(200);
    // The notice reaches node B asynchronously: poll what node B answers.
    for (let i = 0; i < 200 && (await token('batch-secret-two-0123456789')) !== 200; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await token('batch-secret-two-0123456789')).toBe(200);
    expect(await token('batch-secret-one-0123456789')).toBe(401);
  });

  it('stops node B accepting a provider disabled through node A', async () => {
    expect((await apiA.post('/providers/initech/disable')).status).toBe(200);
    const { url } = await appOnB.authorizationUrl({ idp_hint: 'initech' });
    const refused = await new HttpSession().follow(url, {}, appOnB.redirectUri);
    expect(refused.status).toBe(0);
    expect(refused.url.searchParams.get('error')).toBe('invalid_request');
  });
});
