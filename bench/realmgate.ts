/**
 * Realmgate nodes for the bench: the compiled build (`dist/main.js`, what production runs) in a
 * child process of its own, on a fresh PostgreSQL database or a fresh embedded data directory,
 * with the statement counter preloaded. Configured over the admin API like an operator would;
 * what the admin API does not offer (resource servers, thousands of providers) is written while
 * the node is stopped: `realmgate resources add`, and SQL copies of a provider the API created.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { closeDatabase, databaseLocation, openDatabase } from '../src/store/database.ts';
import { ask, freePort, ROOT, startChild, type ServerChild } from './processes.ts';

/** Where a node keeps its data. */
export type StoreKind = 'postgresql' | 'embedded';

const ADMIN = { id: 'bench-admin', secret: 'bench-admin-secret-0123456789' };
/** Far above what the bench sends, so the limiters run (and cost what they cost) but never refuse. */
const NEVER = '1000000000';

/** What `bench/query-counter.mjs` answers. */
export interface StatementCounts {
  all: number;
  inRequests: number;
}

/** A Realmgate node of the bench. */
export interface RealmgateNode {
  readonly name: string;
  readonly store: StoreKind;
  readonly url: string;
  server: ServerChild;
  /** Spawn to `/readyz` 200 on a fresh database (migrations, keys, the admin client). */
  readonly firstStartMs: number;
  /** Spawn to `/readyz` 200 of each restart on the same store (`restart`). */
  readonly restartsMs: number[];
  /** A bearer token of scope `admin` (fetched once per start). */
  adminToken(): Promise<string>;
  /** Statements knex has sent so far in this process: all of them, and those sent in handling HTTP requests. */
  statements(): Promise<StatementCounts>;
  /** Stops the node, runs `offline` (the CLI, SQL) on its store, starts it again. */
  restart(offline?: () => Promise<void>): Promise<void>;
  /** Runs `realmgate <args>` (the compiled CLI) on the node's store; the node must be stopped. */
  cli(args: string[]): Promise<void>;
  /** Runs SQL on the node's store (with `?` bindings); the node must be stopped on the embedded store. */
  sql(statement: string, bindings?: unknown[]): Promise<void>;
  close(): Promise<void>;
}

/** A fresh PostgreSQL database next to `DATABASE_URL`, dropped by `drop`. */
async function freshDatabase(base: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `rg_bench_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Extra Node.js flags for every Realmgate node (`BENCH_NODE_FLAGS`, space-separated): for trying a V8 setting side by side. */
const nodeFlags = () => (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

/** Starts a Realmgate node on a fresh store: PostgreSQL needs `DATABASE_URL`. */
export async function startRealmgate(name: string, store: StoreKind): Promise<RealmgateNode> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-bench-'));
  const database = store === 'postgresql' ? await freshDatabase(process.env.DATABASE_URL!) : undefined;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: os.tmpdir(),
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: url,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    REALMGATE_ADMIN_CLIENT_ID: ADMIN.id,
    REALMGATE_ADMIN_CLIENT_SECRET: ADMIN.secret,
    REALMGATE_ALLOW_PRIVATE_NETWORK: 'true',
    REALMGATE_RATE_LIMIT_TOKEN_PER_MINUTE: NEVER,
    REALMGATE_RATE_LIMIT_DISCOVER_PER_MINUTE: NEVER,
    REALMGATE_RATE_LIMIT_FEDERATION_START_PER_MINUTE: NEVER,
    REALMGATE_RATE_LIMIT_ADMIN_PER_MINUTE: NEVER,
    ...(database ? { DATABASE_URL: database.url, REALMGATE_MASTER_KEY: crypto.randomBytes(32).toString('base64') } : {}),
  };
  const spawnServer = () =>
    startChild({ name, args: [...nodeFlags(), '--import', './bench/query-counter.mjs', 'dist/main.js'], env, readyUrl: `${url}/readyz`, ipc: true, readyTimeoutMs: 180_000 });

  let server = await spawnServer();
  let token: Promise<string> | undefined;
  const node: RealmgateNode = {
    name,
    store,
    url,
    server,
    firstStartMs: server.readyMs,
    restartsMs: [],
    adminToken() {
      token ??= fetch(`${url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=admin',
      }).then(async (res) => {
        const body = (await res.json()) as { access_token?: string };
        if (!body.access_token) throw new Error(`${name}: no admin token: ${JSON.stringify(body)}`);
        return body.access_token;
      });
      return token;
    },
    statements: () => ask<StatementCounts>(server.child, 'statements'),
    async restart(offline) {
      await server.stop();
      await offline?.();
      server = await spawnServer();
      node.server = server;
      node.restartsMs.push(server.readyMs);
      token = undefined;
    },
    cli: (args) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['dist/cli/main.js', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (c: Buffer) => (output += c.toString()));
        child.stderr.on('data', (c: Buffer) => (output += c.toString()));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`realmgate ${args.join(' ')} exited with ${code}:\n${output}`))));
      }),
    async sql(statement, bindings = []) {
      const db = openDatabase(databaseLocation({ databaseUrl: database?.url, dataDir }));
      try {
        await db.raw(statement, bindings as never);
      } finally {
        await closeDatabase(db);
      }
    },
    async close() {
      await server.stop();
      await database?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return node;
}

/** Calls the admin API; throws with the problem document on anything but 2xx. */
export async function adminApi(node: RealmgateNode, method: string, route: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${node.url}/admin/api/${route}`, {
    method,
    headers: { authorization: `Bearer ${await node.adminToken()}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${node.name}: ${method} /admin/api/${route} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}
