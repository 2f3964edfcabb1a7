import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackchannelReceiver, type BackchannelReceiver } from '../support/backchannel-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { addOidcProvider, federatedLogin, registerApp, upstreamClientFor, type TestApp } from '../support/federation.ts';
import { freePort, startTestServer, TEST_MASTER_KEY, type TestServer } from '../support/server.ts';
import { startUpstreamIdp, UPSTREAM_USERS, type UpstreamIdp } from '../support/upstream-idp.ts';

const [alice] = UPSTREAM_USERS as [(typeof UPSTREAM_USERS)[number]];

/**
 * Node A in this process, node B its own `node --import tsx src/main.ts` process, one PostgreSQL
 * database (embedded PGlite cannot be shared by two processes).
 */
describe.skipIf(!process.env.DATABASE_URL)('logout across two nodes on one PostgreSQL (skipped on PGlite; set DATABASE_URL)', () => {
  let database: TestDatabase;
  let nodeA: TestServer;
  let nodeB: { url: string; child: ChildProcess; dataDir: string };
  let idp: UpstreamIdp;
  let receiver: BackchannelReceiver;
  let app: TestApp;

  async function startNodeB(databaseUrl: string) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-logout-b-'));
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
        REALMGATE_LOGOUT_RETRY_INITIAL_SECONDS: '30',
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

  beforeAll(async () => {
    database = await createTestDatabase();
    idp = await startUpstreamIdp();
    receiver = await startBackchannelReceiver();
    nodeA = await startTestServer(database.db, { REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: '1', REALMGATE_LOGOUT_RETRY_INITIAL_SECONDS: '1' });
    nodeB = await startNodeB(database.url!);
    await addOidcProvider(nodeA.node, nodeA.url, idp, { alias: 'acme' });
    app = await registerApp(nodeA.node, nodeA.url, 'mail', { backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true });
  });

  afterAll(async () => {
    if (nodeB && nodeB.child.exitCode === null && nodeB.child.signalCode === null) {
      const exited = new Promise((resolve) => nodeB.child.once('exit', resolve));
      nodeB.child.kill('SIGTERM');
      await exited;
    }
    if (nodeB) fs.rmSync(nodeB.dataDir, { recursive: true, force: true });
    await nodeA?.close();
    await idp?.close();
    await receiver?.close();
    await database?.close();
  });

  it('ends the session on the node that received the upstream logout; the other node delivers after the first one dies', async () => {
    const { claims } = await federatedLogin(app, idp, alice, { params: { idp_hint: 'acme' } });
    const row = await database.db('login_sessions').where({ account_id: claims.sub }).first<{ session_uid: string; upstream_session_id: string }>();
    receiver.down = true;
    const now = Math.floor(Date.now() / 1000);
    const token = await idp.signJwt({
      iss: idp.issuer, aud: upstreamClientFor('acme').clientId, iat: now, jti: crypto.randomUUID(),
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, sid: row!.upstream_session_id,
    });
    const res = await fetch(`${nodeB.url}/federation/acme/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }) });
    expect(res.status).toBe(200);
    expect(await database.db('oidc_payloads').where({ model: 'Session', uid: row!.session_uid }).first()).toBeUndefined();
    // Node B dies at once, before (or right after) its first attempt; nothing it queued is lost.
    nodeB.child.kill('SIGKILL');
    await new Promise((resolve) => nodeB.child.once('exit', resolve));
    receiver.down = false;
    const delivered = await eventually('node A delivered the notice', async () => {
      const d = await database.db('logout_deliveries').where({ session_uid: row!.session_uid, status: 'delivered' }).first<{ reason: string }>();
      return d;
    }, 60_000);
    expect(delivered.reason).toBe('upstream_logout');
    expect(receiver.tokens).toHaveLength(1);
  });
});
