/**
 * `npm run demo`: Realmgate on 127.0.0.1:3000 (embedded PGlite under data/demo), a demo upstream
 * OpenID Connect IdP on 127.0.0.1:3001 and a demo application on 127.0.0.1:3002, everything
 * registered, so a federated login can be clicked through in a browser.
 */
import { startDemo } from './start.ts';
import { DEMO_USERS } from './upstream-idp.ts';

const HOST = '127.0.0.1';
/** Realmgate listens here, the IdP on the next port, the application on the one after (`DEMO_BASE_PORT`, default 3000). */
const BASE_PORT = Number(process.env.DEMO_BASE_PORT ?? 3000);

async function main(): Promise<void> {
  const urls = { realmgate: `http://${HOST}:${BASE_PORT}`, idp: `http://${HOST}:${BASE_PORT + 1}`, app: `http://${HOST}:${BASE_PORT + 2}` };
  const demo = await startDemo(urls, { dataDir: 'data/demo', logLevel: process.env.LOG_LEVEL ?? 'warn' });

  const users = DEMO_USERS.map((u) => `${u.email} / ${u.password}`).join(', ');
  console.log(`
Realmgate demo is running.

  Open the demo application:  ${urls.app}

  It signs you in through Realmgate (${urls.realmgate}), which sends you to the
  demo upstream IdP (${urls.idp}). Demo users: ${users}.

Press Ctrl+C to stop.`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    demo.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    console.error(
      `The demo needs ports ${BASE_PORT}, ${BASE_PORT + 1} and ${BASE_PORT + 2} on ${HOST}; one is in use (${(error as Error).message}).\n` +
        'Stop what uses it, or pick other ports: DEMO_BASE_PORT=4000 npm run demo',
    );
  } else {
    console.error('The demo failed to start:', error);
  }
  process.exit(1);
});
