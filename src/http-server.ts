import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** An HTTP server that drains when closed. */
export interface DrainingServer {
  /** The bound address, e.g. `http://127.0.0.1:3000`. */
  url: string;
  /**
   * Stops accepting connections, answers the requests in flight with `Connection: close`, closes
   * idle keep-alive connections, and resolves once every connection has ended.
   */
  close(): Promise<void>;
}

/** Listens with `handler` on `host:port` (port 0 picks a free one). */
export function listenDraining(handler: http.RequestListener, options: { port: number; host: string; keepAliveTimeoutMs: number }): Promise<DrainingServer> {
  const server = http.createServer(handler);
  server.keepAliveTimeout = options.keepAliveTimeoutMs;
  const inFlight = new Map<http.ServerResponse, Socket>();
  let draining = false;

  // Before the handler: every response is tracked until it ends, and once draining, says it closes.
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight.set(res, req.socket);
    res.once('close', () => inFlight.delete(res));
    if (draining) res.setHeader('connection', 'close');
  });

  const drain = (): void => {
    draining = true;
    for (const [res, socket] of inFlight) {
      if (!res.headersSent) {
        // Node then ends the connection after this response instead of keeping it alive.
        res.setHeader('connection', 'close');
      } else {
        // The headers said keep-alive already: end the connection once the response is written.
        res.once('finish', () => socket.end());
      }
    }
    server.closeIdleConnections();
  };

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${options.host}:${port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            drain();
          }),
      });
    });
  });
}
