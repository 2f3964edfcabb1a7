/**
 * The demo's three parts started together: Realmgate (embedded PGlite under `dataDir`), a demo
 * upstream OpenID Connect IdP and a demo application, the IdP registered as provider `demo-idp`
 * and the application as client `demo-app`, logout wired both ways. `npm run demo` (run.ts) and
 * the demo's test start it the same way.
 */
import crypto from 'node:crypto';
import { createRealmgate, type Realmgate } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import type { ProviderInput } from '../src/store/providers.ts';
import { saveClient } from '../src/token-server/clients.ts';
import { startDemoApp } from './app.ts';
import { startDemoIdp } from './upstream-idp.ts';

/** The demo upstream provider's alias at Realmgate. */
export const DEMO_ALIAS = 'demo-idp';

/** Where the demo's parts listen. */
export interface DemoUrls {
  realmgate: string;
  idp: string;
  app: string;
}

/** A running demo. */
export interface RunningDemo {
  urls: DemoUrls;
  node: Realmgate;
  /** Stops the application, the IdP, then Realmgate. */
  close(): Promise<void>;
}

/** Stores (or refreshes) the demo IdP as an upstream provider of Realmgate. */
async function registerProvider(node: Realmgate, idpUrl: string, clientSecret: string): Promise<void> {
  const input: ProviderInput = {
    alias: DEMO_ALIAS,
    kind: 'oidc',
    displayName: 'Demo IdP',
    enabled: true,
    domains: ['demo.example'],
    settings: { issuer: idpUrl, client_id: 'realmgate', scopes: ['openid', 'email', 'profile', 'groups'] },
    secrets: { client_secret: clientSecret },
    claimMappings: {},
  };
  await node.services.store.transaction(async (tx) => {
    if (await tx.providers.get(DEMO_ALIAS)) await tx.providers.update(input);
    else await tx.providers.create(input);
  });
}

/** Stores (or refreshes) the demo application as a client of Realmgate. */
async function registerApp(node: Realmgate, appUrl: string, clientSecret: string): Promise<void> {
  await saveClient(
    node.services,
    {
      client_id: 'demo-app',
      client_name: 'Demo application',
      redirect_uris: [`${appUrl}/callback`],
      post_logout_redirect_uris: [`${appUrl}/`],
      backchannel_logout_uri: `${appUrl}/backchannel-logout`,
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      require_consent: false,
    },
    clientSecret,
  );
}

/** Starts the demo on `urls` (each http://127.0.0.1:<port>) with its embedded database under `dataDir`. */
export async function startDemo(urls: DemoUrls, options: { dataDir: string; logLevel: string }): Promise<RunningDemo> {
  const upstreamSecret = crypto.randomBytes(24).toString('base64url');
  const appSecret = crypto.randomBytes(24).toString('base64url');

  const idp = await startDemoIdp(urls.idp, {
    client_id: 'realmgate',
    client_secret: upstreamSecret,
    redirect_uris: [`${urls.realmgate}/federation/${DEMO_ALIAS}/callback`],
    // Signing out of the demo application signs out at the IdP too, which sends the browser back here.
    post_logout_redirect_uris: [`${urls.realmgate}/federation/${DEMO_ALIAS}/logged-out`],
    // Signing out at the IdP tells Realmgate, which tells the application.
    backchannel_logout_uri: `${urls.realmgate}/federation/${DEMO_ALIAS}/backchannel-logout`,
    backchannel_logout_session_required: true,
  });

  const realmgate = new URL(urls.realmgate);
  const config = loadConfig({
    PORT: realmgate.port,
    HOST: realmgate.hostname,
    ISSUER: urls.realmgate,
    DATA_DIR: options.dataDir,
    REALMGATE_ALLOW_PRIVATE_NETWORK: 'true',
    LOG_LEVEL: options.logLevel,
  });
  const node = await createRealmgate(config, { logger: createLogger({ level: options.logLevel }) });
  await node.listen();
  await registerProvider(node, urls.idp, upstreamSecret);
  await registerApp(node, urls.app, appSecret);

  const app = await startDemoApp(urls.app, urls.realmgate, { clientId: 'demo-app', clientSecret: appSecret }, { idpUrl: urls.idp });
  return {
    urls,
    node,
    async close() {
      await Promise.all([app.close(), idp.close()]);
      await node.close();
    },
  };
}
