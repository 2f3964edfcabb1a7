/**
 * `npm run demo`: Realmgate on 127.0.0.1:3000 (embedded PGlite under data/demo), a demo upstream
 * OpenID Connect IdP on 127.0.0.1:3001 and a demo application on 127.0.0.1:3002, everything
 * registered, so a federated login can be clicked through in a browser.
 */
import crypto from 'node:crypto';
import { createRealmgate, type Realmgate } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import type { ProviderInput } from '../src/store/providers.ts';
import { saveClient } from '../src/token-server/clients.ts';
import { startDemoApp } from './app.ts';
import { DEMO_USERS, startDemoIdp } from './upstream-idp.ts';

const HOST = '127.0.0.1';
/** Realmgate listens here, the IdP on the next port, the application on the one after (`DEMO_BASE_PORT`, default 3000). */
const BASE_PORT = Number(process.env.DEMO_BASE_PORT ?? 3000);
const REALMGATE_URL = `http://${HOST}:${BASE_PORT}`;
const IDP_URL = `http://${HOST}:${BASE_PORT + 1}`;
const APP_URL = `http://${HOST}:${BASE_PORT + 2}`;
const ALIAS = 'demo-idp';

/** Stores (or refreshes) the demo IdP as an upstream provider of Realmgate. */
async function registerProvider(node: Realmgate, clientSecret: string): Promise<void> {
  const { db, providers } = node.services;
  const input: ProviderInput = {
    alias: ALIAS,
    kind: 'oidc',
    displayName: 'Demo IdP',
    enabled: true,
    domains: ['demo.example'],
    settings: { issuer: IDP_URL, client_id: 'realmgate', scopes: ['openid', 'email', 'profile', 'groups'] },
    secrets: { client_secret: clientSecret },
    claimMappings: {},
  };
  await db.transaction(async (trx) => {
    if (await providers.get(ALIAS, trx)) await providers.update(input, trx);
    else await providers.create(input, trx);
  });
}

/** Stores (or refreshes) the demo application as a client of Realmgate. */
async function registerApp(node: Realmgate, clientSecret: string): Promise<void> {
  await saveClient(
    node.services,
    {
      client_id: 'demo-app',
      client_name: 'Demo application',
      redirect_uris: [`${APP_URL}/callback`],
      post_logout_redirect_uris: [`${APP_URL}/`],
      backchannel_logout_uri: `${APP_URL}/backchannel-logout`,
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      require_consent: false,
    },
    clientSecret,
  );
}

async function main(): Promise<void> {
  const logLevel = process.env.LOG_LEVEL ?? 'warn';
  const upstreamSecret = crypto.randomBytes(24).toString('base64url');
  const appSecret = crypto.randomBytes(24).toString('base64url');

  const idp = await startDemoIdp(IDP_URL, {
    client_id: 'realmgate',
    client_secret: upstreamSecret,
    redirect_uris: [`${REALMGATE_URL}/federation/${ALIAS}/callback`],
    // Signing out of the demo application signs out at the IdP too, which sends the browser back here.
    post_logout_redirect_uris: [`${REALMGATE_URL}/federation/${ALIAS}/logged-out`],
    backchannel_logout_uri: `${REALMGATE_URL}/federation/${ALIAS}/backchannel-logout`,
    backchannel_logout_session_required: true,
  });

  const config = loadConfig({
    PORT: String(BASE_PORT),
    HOST,
    ISSUER: REALMGATE_URL,
    DATA_DIR: 'data/demo',
    REALMGATE_ALLOW_PRIVATE_NETWORK: 'true',
    LOG_LEVEL: logLevel,
  });
  const node = await createRealmgate(config, { logger: createLogger({ level: logLevel }) });
  await node.listen();
  await registerProvider(node, upstreamSecret);
  await registerApp(node, appSecret);

  const app = await startDemoApp(APP_URL, REALMGATE_URL, { clientId: 'demo-app', clientSecret: appSecret }, { idpUrl: IDP_URL });

  const users = DEMO_USERS.map((u) => `${u.email} / ${u.password}`).join(', ');
  console.log(`
Realmgate demo is running.

  Open the demo application:  ${APP_URL}

  It signs you in through Realmgate (${REALMGATE_URL}), which sends you to the
  demo upstream IdP (${IDP_URL}). Demo users: ${users}.

Press Ctrl+C to stop.`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    Promise.all([app.close(), idp.close()])
      .then(() => node.close())
      .then(
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
