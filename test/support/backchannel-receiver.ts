import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A test application's back-channel logout endpoint: records each `logout_token` it is sent. */
export interface BackchannelReceiver {
  url: string;
  tokens: string[];
  /** While true the application is down: it answers 503 and records nothing. */
  down: boolean;
  /** Requests refused while down (the sum of `refusedBy`). */
  readonly refused: number;
  /** Requests refused while down, by the `client` query parameter of the URL they were sent to. */
  refusedBy: Record<string, number>;
  /** Resolves with the next token received (or one already waiting). */
  next(): Promise<string>;
  close(): Promise<void>;
}

/** Starts a back-channel logout receiver on 127.0.0.1. */
export async function startBackchannelReceiver(): Promise<BackchannelReceiver> {
  const tokens: string[] = [];
  const waiting: ((t: string) => void)[] = [];
  let consumed = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (receiver.down) {
        const client = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('client') ?? '';
        receiver.refusedBy[client] = (receiver.refusedBy[client] ?? 0) + 1;
        res.writeHead(503).end();
        return;
      }
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method !== 'POST' || !token) {
        res.writeHead(400).end();
        return;
      }
      tokens.push(token);
      waiting.shift()?.(tokens[consumed++]!);
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const receiver: BackchannelReceiver = {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    tokens,
    down: false,
    get refused() {
      return Object.values(this.refusedBy).reduce((sum, n) => sum + n, 0);
    },
    refusedBy: {},
    next: () => (consumed < tokens.length ? Promise.resolve(tokens[consumed++]!) : new Promise((resolve) => waiting.push(resolve))),
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
  return receiver;
}
