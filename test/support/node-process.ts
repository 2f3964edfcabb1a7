import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { TEST_MASTER_KEY } from './server.ts';

/** A Realmgate server process (`src/main.ts` or `dist/main.js`) whose JSON log lines are kept. */
export interface ServerProcess {
  child: ChildProcess;
  /** Complete stdout lines so far (pino JSON). */
  lines: string[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves once a log line with this `msg` has been written. */
  logged(msg: string): Promise<void>;
  /** The exit code, once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * The environment of a server or CLI process for a test: PORT, DATA_DIR, and on PostgreSQL
 * (`DATABASE_URL` set) a fresh database of its own with the test master key.
 */
export async function processEnv(port: number, dataDir: string): Promise<{ env: Record<string, string>; database: TestDatabase | undefined }> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info' };
  if (!process.env.DATABASE_URL) return { env, database: undefined };
  const database = await createTestDatabase();
  return { env: { ...env, DATABASE_URL: database.url!, REALMGATE_MASTER_KEY: TEST_MASTER_KEY }, database };
}

/** Starts `node ...args` with `env` and resolves once it logs "Realmgate listening". */
export async function startServerProcess(args: string[], env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const split = (partial + chunk.toString()).split('\n');
    partial = split.pop()!;
    lines.push(...split);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const logged = (msg: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (lines.some((l) => l.includes(`"msg":"${msg}"`))) {
          child.stdout!.off('data', check);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      check();
      void exited.then((code) => reject(new Error(`server exited with ${code} before logging "${msg}":\n${lines.join('\n')}\n${stderr}`)));
    });
  const server = { child, lines, stderr: () => stderr, logged, exited };
  await logged('Realmgate listening');
  return server;
}
