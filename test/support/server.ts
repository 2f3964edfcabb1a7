import crypto from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import type { Knex } from 'knex';
import { pino, type Logger } from 'pino';
import { createRealmgate, type Realmgate } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One master key per test run, so several nodes in a test share it. */
export const TEST_MASTER_KEY = crypto.randomBytes(32).toString('base64');

/** A Realmgate node listening on 127.0.0.1 for a test. */
export interface TestServer {
  url: string;
  config: Config;
  node: Realmgate;
  close(): Promise<void>;
}

/**
 * Starts a Realmgate node on a free port over `db` (shared by nodes that pass the same one).
 * `env` adds or overrides settings; `options.logger` replaces the silent test logger (to read the logs).
 */
export async function startTestServer(db: Knex, env: Record<string, string> = {}, options: { logger?: Logger } = {}): Promise<TestServer> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-test-'));
  const config = loadConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    REALMGATE_MASTER_KEY: TEST_MASTER_KEY,
    REALMGATE_ALLOW_PRIVATE_NETWORK: 'true',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Suites sign in many times a minute from 127.0.0.1; the limits have their own test (test/security/rate-limits.test.ts).
    REALMGATE_RATE_LIMIT_TOKEN_PER_MINUTE: '0',
    REALMGATE_RATE_LIMIT_DISCOVER_PER_MINUTE: '0',
    REALMGATE_RATE_LIMIT_FEDERATION_START_PER_MINUTE: '0',
    REALMGATE_RATE_LIMIT_ADMIN_PER_MINUTE: '0',
    ...env,
  });
  const logger = options.logger ?? pino({ level: config.logLevel });
  const node = await createRealmgate(config, { db, logger, skipMigrations: true });
  const url = await node.listen(port);
  return {
    url,
    config,
    node,
    async close() {
      await node.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
