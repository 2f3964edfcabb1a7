import http from 'node:http';
import type { Express } from 'express';

/** Serves an express app at `baseUrl`'s host and port; `close` also drops open keep-alive connections. */
export async function serve(app: Express, baseUrl: string): Promise<{ close(): Promise<void> }> {
  const url = new URL(baseUrl);
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(url.port), url.hostname, resolve);
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
