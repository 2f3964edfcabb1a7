import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { discoverAs, passwordLogin } from './support/login.ts';
import { TEST_MASTER_KEY, freePort } from './support/server.ts';

const APP = 'http://127.0.0.1:1/cb';
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-cli-'));
let database: TestDatabase | undefined;
let env: Record<string, string>;
let port: number;

/** Runs `npm run cli -- …` the way the README shows, without npm's own startup cost. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `src/main.ts` (what `npm start` runs) and waits until /readyz answers. */
async function startServer(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  // A hang guard of 90 s: an embedded store is created and migrated on a first start.
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; ) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ready) return child;
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('server did not become ready');
}

const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

beforeAll(async () => {
  port = await freePort();
  const base = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  if (process.env.DATABASE_URL) {
    database = await createTestDatabase();
    env = { ...base, DATABASE_URL: database.url!, REALMGATE_MASTER_KEY: TEST_MASTER_KEY };
  } else {
    env = base;
  }
});

afterAll(async () => {
  await database?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the CLI and the server process', () => {
  it('migrates, adds a user and clients, rotates keys, and serves them; survives a graceful restart', async () => {
    const migrated = await cli('migrate');
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toMatch(/applied: 20261123000100_initial|database is up to date/);

    expect((await cli('users', 'add', '--email', 'linus@example.com', '--password', 'penguins-rule', '--name', 'Linus')).stdout).toMatch(/user linus@example.com created with id [0-9a-f-]{36}/);
    const web = await cli('clients', 'add', '--id', 'web', '--redirect-uri', APP, '--grant-type', 'authorization_code', '--grant-type', 'refresh_token', '--no-consent', '--secret', 'web-secret-web-secret');
    expect(web.stdout).toContain('client web saved');
    const batch = await cli('clients', 'add', '--id', 'batch', '--grant-type', 'client_credentials');
    const batchSecret = /client_secret: (\S+)/.exec(batch.stdout)?.[1];
    expect(batchSecret).toBeTruthy();
    expect((await cli('resources', 'add', '--identifier', 'https://api.example.test', '--scope', 'read write')).code).toBe(0);
    expect((await cli('keys', 'rotate')).stdout).toMatch(/new current keys/);
    expect((await cli('keys', 'list')).stdout.match(/current/g)).toHaveLength(2);
    expect((await cli('clients', 'list')).stdout).toMatch(/batch[\s\S]*web/);

    let server = await startServer();
    const issuer = `http://localhost:${port}`;
    const config = await discoverAs(issuer.replace('localhost', '127.0.0.1'), 'web', 'web-secret-web-secret').catch(() => undefined);
    expect(config, 'discovery is served under the default issuer http://localhost:PORT').toBeUndefined();
    const webConfig = await oidc.discovery(new URL(issuer), 'web', 'web-secret-web-secret', undefined, { execute: [oidc.allowInsecureRequests] });
    const { tokens } = await passwordLogin(webConfig, { redirectUri: APP, email: 'linus@example.com', password: 'penguins-rule', scope: 'openid offline_access', params: { prompt: 'consent' } });
    const batchConfig = await oidc.discovery(new URL(issuer), 'batch', batchSecret!, undefined, { execute: [oidc.allowInsecureRequests] });
    const cc = await oidc.clientCredentialsGrant(batchConfig, { resource: 'https://api.example.test', scope: 'read' });
    expect(cc.access_token.split('.')).toHaveLength(3);

    if (!process.env.DATABASE_URL) {
      // Embedded PGlite serves one process: the CLI says so instead of corrupting it.
      const locked = await cli('users', 'add', '--email', 'second@example.com', '--password', 'penguins-rule');
      expect(locked.code).toBe(2);
      expect(locked.stderr).toMatch(/in use by another Realmgate process \(pid \d+\)/);
    }

    server.kill('SIGTERM');
    expect(await exited(server)).toBe(0);

    server = await startServer();
    try {
      const refreshed = await oidc.refreshTokenGrant(webConfig, tokens.refresh_token!);
      expect(refreshed.claims()?.sub).toBe(tokens.claims()?.sub);
    } finally {
      server.kill('SIGTERM');
      await exited(server);
    }
  }, 300_000);

  it('explains mistakes and exits with status 2', async () => {
    const unknown = await cli('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command: frobnicate');
    const missing = await cli('users', 'add', '--email', 'x@example.com');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--password is required');
    const invalid = await cli('clients', 'add', '--id', 'bad', '--redirect-uri', 'not a url');
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('invalid client: redirect_uris must only contain valid uris');
    // Three processes that each open (and, embedded, create) the database: a hang guard, not a timing.
  }, 180_000);
});
