import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.ts';
import { TEST_MASTER_KEY, freePort } from './support/server.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-shutdown-'));
let database: TestDatabase | undefined;
let port: number;
let server: ChildProcess;
const logLines: string[] = [];
let exitCode: Promise<number | null>;

/** Resolves when the server has logged a line with this message. */
function logged(msg: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (logLines.some((l) => l.includes(`"msg":"${msg}"`))) {
        server.stdout!.off('data', check);
        resolve();
      }
    };
    server.stdout!.on('data', check);
    check();
  });
}

beforeAll(async () => {
  port = await freePort();
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info' };
  if (process.env.DATABASE_URL) {
    database = await createTestDatabase();
    Object.assign(env, { DATABASE_URL: database.url!, REALMGATE_MASTER_KEY: TEST_MASTER_KEY });
  }
  // What `npm start` runs, from the sources.
  server = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let partial = '';
  server.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    logLines.push(...lines);
  });
  exitCode = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
  await logged('Realmgate listening');
});

afterAll(async () => {
  if (server.exitCode === null) server.kill('SIGKILL');
  await database?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('shutting down on SIGTERM', () => {
  it('stops accepting, closes idle keep-alive connections, answers the request in flight with Connection: close, and exits 0', async () => {
    const idleClient = new http.Agent({ keepAlive: true });
    const busyClient = new http.Agent({ keepAlive: true });

    // A keep-alive client that made one request and holds its connection open, idle.
    const idleSocket = await new Promise<net.Socket>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: idleClient }, (res) => {
        expect(res.headers.connection).toBe('keep-alive');
        res.resume();
        res.on('end', () => resolve(req.socket as net.Socket));
      });
      req.on('error', reject);
    });
    const idleClosed = new Promise<void>((resolve) => idleSocket.once('close', () => resolve()));

    // A request in flight: its headers are in (the server said 100 Continue), its body is not yet.
    const body = 'grant_type=client_credentials&client_id=nobody';
    const inFlight = http.request({
      host: '127.0.0.1', port, path: '/token', method: 'POST', agent: busyClient,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length), expect: '100-continue' },
    });
    let bodySent = false;
    let answeredEarly = false;
    inFlight.on('response', () => (answeredEarly = !bodySent));
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      inFlight.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Object.assign(res, { text: Buffer.concat(chunks).toString() })));
      });
      inFlight.on('error', reject);
    });
    inFlight.flushHeaders();
    await new Promise<void>((resolve) => inFlight.once('continue', () => resolve()));

    server.kill('SIGTERM');
    await logged('shutting down');

    await idleClosed;
    const refused = await new Promise<string>((resolve) => {
      const probe = net.connect(port, '127.0.0.1');
      probe.once('connect', () => {
        probe.destroy();
        resolve('accepted');
      });
      probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused, logLines.join('\n')).toBe('ECONNREFUSED');

    bodySent = true;
    inFlight.end(body);
    const answer = (await response) as http.IncomingMessage & { text: string };
    expect(answeredEarly).toBe(false);
    expect(answer.statusCode).toBe(401);
    expect(JSON.parse(answer.text)).toMatchObject({ error: 'invalid_client' });
    expect(answer.headers.connection).toBe('close');

    expect(await exitCode).toBe(0);
    expect(logLines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    idleClient.destroy();
    busyClient.destroy();
  });
});
