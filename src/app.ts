import crypto from 'node:crypto';
import type http from 'node:http';
import path from 'node:path';
import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Knex } from 'knex';
import type { AccountRepository } from './store/accounts.ts';
import { LoginThrottle } from './store/login-throttle.ts';
import { adminRoutes } from './admin/router.ts';
import type { Config } from './config.ts';
import { CsrfTokens } from './interaction/csrf.ts';
import { withOpenProviders } from './federation/home-realm.ts';
import { createFederation } from './federation/index.ts';
import type { ExternalIdentityRepository } from './store/external-identities.ts';
import { accountClientMetadata, accountRoutes } from './account/routes.ts';
import { homeRealmLoginPage } from './interaction/login-page.ts';
import { listenDraining, type DrainingServer } from './http-server.ts';
import { interactionRoutes } from './interaction/routes.ts';
import { InteractionService, type MachineState } from './interaction/service.ts';
import type { AuditLog } from './store/audit.ts';
import type { EmailLinkRepository } from './store/email-links.ts';
import type { MfaFactorRepository } from './store/mfa-factors.ts';
import type { WebauthnChallengeRepository } from './store/webauthn-challenges.ts';
import type { WebauthnCredentialRepository } from './store/webauthn-credentials.ts';
import { relyingPartyOf } from './accounts/webauthn.ts';
import { webauthnScriptRoutes } from './interaction/webauthn-scripts.ts';
import type { TermsAcceptanceRepository } from './store/terms-acceptances.ts';
import { createMailer, type Mailer } from './mail/mailer.ts';
import { InteractionStateRepository } from './store/interaction-states.ts';
import { Store } from './store/store.ts';
import { createViews, type Views } from './interaction/views.ts';
import type { Jobs } from './jobs/index.ts';
import { nodeJobs } from './jobs/node-jobs.ts';
import { installDir } from './install-dir.ts';
import { securityHeaderSetter } from './security-headers.ts';
import { errorHandler, logFailure } from './errors/handler.ts';
import { toRealmgateError } from './errors/known-errors.ts';
import { newReference } from './errors.ts';
import { createLogger, type Logger } from './logger.ts';
import type { LogoutDeliveryRepository } from './store/logout-deliveries.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { operationsRoutes } from './operations.ts';
import { ChangeNotices, listenerConnection } from './store/change-notices.ts';
import { ClientCache } from './store/client-cache.ts';
import { ResourceServerCache } from './store/resource-server-cache.ts';
import type { ClientRepository } from './store/clients.ts';
import { runInRequestScope } from './store/request-scope.ts';
import { closeDatabase, databaseLocation, openDatabase } from './store/database.ts';
import { migrateLatest } from './store/migrate.ts';
import { ProviderDirectory } from './store/provider-directory.ts';
import type { ProviderRepository } from './store/providers.ts';
import { basicClientId, createRateLimits, type RateLimits } from './rate-limits.ts';
import { ResourceServerRepository } from './store/resource-servers.ts';
import { Sealer, resolveMasterKey, verifyMasterKey } from './store/seal.ts';
import { saveClient } from './token-server/clients.ts';
import { TokenEngine } from './token-server/engine.ts';
import { SigningKeyStore } from './store/signing-keys.ts';
import type { LoginSessionRepository } from './store/login-sessions.ts';
import { KEY_RETENTION_SECONDS } from './token-server/ttl.ts';

const publicDir = path.join(installDir, 'public');

/** The stores and services one Realmgate node is made of; the database handle is not among them (workflows use the store). */
export interface Services {
  config: Config;
  /** The repositories and their unit of work (`store.transaction(fn)`). */
  store: Store;
  logger: Logger;
  metrics: Metrics;
  sealer: Sealer;
  views: Views;
  /** CSRF tokens for every interaction form (login, picker, consent). */
  csrf: CsrfTokens;
  clients: ClientRepository;
  accounts: AccountRepository;
  /** Links between upstream identities and accounts. */
  identities: ExternalIdentityRepository;
  audit: AuditLog;
  /** The interaction state machine's sealed state per interaction. */
  interactionStates: InteractionStateRepository<MachineState>;
  throttle: LoginThrottle;
  keys: SigningKeyStore;
  loginSessions: LoginSessionRepository;
  resourceServers: ResourceServerRepository;
  providers: ProviderRepository;
  /** Home-realm discovery's indexed provider lookups. */
  directory: ProviderDirectory;
  /** Back-channel logout deliveries to applications, shared by every node (the store's `logoutDeliveries`). */
  outbox: LogoutDeliveryRepository;
  /** Terms-of-service versions each account accepted. */
  termsAcceptances: TermsAcceptanceRepository;
  /** Single-use links sent by mail (email verification, password reset). */
  emailLinks: EmailLinkRepository;
  /** Second factors (TOTP secrets sealed) and recovery codes (hashed). */
  mfaFactors: MfaFactorRepository;
  /** Passkeys (rows of `mfa_factors` with their public keys and counters). */
  webauthnCredentials: WebauthnCredentialRepository;
  /** WebAuthn challenges handed to browsers, each taken once. */
  webauthnChallenges: WebauthnChallengeRepository;
  /** Sends mail over the operator's SMTP server; undefined when none is configured. */
  mailer: Mailer | undefined;
  engine: TokenEngine;
  /** Change notices for the version caches; a server node starts listening, the CLI never does (its caches read versions). */
  changes: ChangeNotices;
}

/** Options for tests and tools: an existing database, a logger. */
export interface StartOptions {
  /** A knex instance to use instead of opening one from config; the caller closes it. */
  db?: Knex;
  logger?: Logger;
  /** Skips migrations (the caller already ran them). */
  skipMigrations?: boolean;
}

/** A node's services with the database handle they are built on, which only the composition root keeps. */
export interface OpenedServices {
  services: Services;
  db: Knex;
  /** True when `openServices` opened the database (and its caller must close it). */
  ownsDb: boolean;
}

/**
 * Opens the database, migrates it, checks the master key and builds every service.
 * The CLI uses this too, so a command sees exactly what the server sees.
 */
export async function openServices(config: Config, options: StartOptions = {}): Promise<OpenedServices> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const db = options.db ?? openDatabase(databaseLocation(config));
  const ownsDb = !options.db;
  try {
    if (!options.skipMigrations) {
      const applied = await migrateLatest(db);
      if (applied.length) logger.info({ migrations: applied }, 'database migrated');
    }
    const sealer = new Sealer(resolveMasterKey(config));
    await verifyMasterKey(db, sealer);
    const metrics = createMetrics();
    const views = createViews({ templatesDir: config.templatesDir });
    const csrf = new CsrfTokens(sealer.deriveKey('csrf'));
    const changes = new ChangeNotices({ connect: listenerConnection(db), logger });
    const store = new Store(db, { sealer, logoutRetryPeriodSeconds: config.logoutRetryPeriodSeconds, changes });
    const { accounts, identities, audit, termsAcceptances, emailLinks, clients, providers, mfaFactors, webauthnCredentials, webauthnChallenges, loginSessions } = store;
    const outbox = store.logoutDeliveries;
    const interactionStates = new InteractionStateRepository<MachineState>(db, sealer);
    const keys = new SigningKeyStore(db, sealer, { retentionSeconds: KEY_RETENTION_SECONDS });
    await keys.ensureKeys();
    const resourceServers = new ResourceServerRepository(db);
    const directory = new ProviderDirectory(db);
    const throttle = new LoginThrottle(db, {
      maxFailuresPerAccount: config.loginThrottleMaxFailures,
      maxFailuresPerIp: config.loginThrottleMaxFailuresPerIp,
      windowSeconds: config.loginThrottleWindowSeconds,
      maxDelaySeconds: config.loginMaxDelaySeconds,
    });
    const mailer = config.mail ? createMailer(config.mail, logger) : undefined;
    const engine = await TokenEngine.create({
      issuer: config.issuer,
      trustProxy: config.trustProxy !== false,
      allowPrivateNetwork: config.allowPrivateNetwork,
      extraClaims: config.extraClaims,
      adapter: store.engineAdapter(new ClientCache({ clients, changes: changes.watch('clients'), maxEntries: config.clientCacheSize })),
      keys,
      accounts,
      termsAcceptances,
      loginSessions,
      mfaFactors,
      resourceServers: new ResourceServerCache({ resourceServers, changes: changes.watch('resource_servers'), maxEntries: 1_000 }),
      store,
      session: { lifetimeSeconds: config.sessionLifetimeSeconds, idleTimeoutSeconds: config.sessionIdleTimeoutSeconds },
      cookieKeys: [sealer.deriveKey('cookies')],
      views,
      logger,
      metrics,
    });
    const services: Services = {
      config, store, logger, metrics, sealer, views, csrf, clients, accounts, identities, audit, interactionStates,
      throttle, keys, loginSessions, resourceServers, providers, directory, outbox, termsAcceptances, emailLinks, mfaFactors,
      webauthnCredentials, webauthnChallenges, mailer, engine, changes,
    };
    return { services, db, ownsDb };
  } catch (error) {
    if (ownsDb) await closeDatabase(db);
    throw error;
  }
}

/** Ensures the bootstrap admin client from `REALMGATE_ADMIN_CLIENT_ID`/`_SECRET`. */
async function ensureAdminClient(services: Services): Promise<void> {
  const admin = services.config.adminClient;
  if (!admin) return;
  await saveClient(
    services,
    {
      client_id: admin.clientId,
      client_name: 'Realmgate administration',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'admin',
    },
    admin.clientSecret,
  );
  services.logger.info({ client_id: admin.clientId }, 'admin client ensured');
}

/** Ensures the built-in public client the account page signs in with. */
async function ensureAccountClient(services: Services): Promise<void> {
  await saveClient(services, accountClientMetadata(services.config.issuer), null);
}

/** What `requestStarter` records for a request: its id and its logger (made on first use). */
interface RequestLocals {
  requestId: string;
  log: Logger;
}

/**
 * Gives a request its id, a child logger and its metrics. The child logger is made when something
 * first logs (`locals.log`): most requests never do, and making one per request showed in the
 * token endpoint's profile. `locals` is express's `res.locals`, or the object the engine's own
 * paths use (see `engineRoutes`); `path` is the request's path.
 */
function requestStarter(logger: Logger, metrics: Metrics): (req: http.IncomingMessage, res: http.ServerResponse, locals: Record<string, unknown>, path: string) => RequestLocals {
  const logsRequests = logger.isLevelEnabled('debug');
  return (req, res, locals, path) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID();
    res.setHeader('x-request-id', id);
    locals.requestId = id;
    let log: Logger | undefined;
    Object.defineProperty(locals, 'log', {
      configurable: true,
      enumerable: true,
      get: () => (log ??= logger.child({ request_id: id })),
      set: (value: Logger) => void (log = value),
    });
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = routeLabel(path);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequests.inc({ method: req.method ?? 'GET', route, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method ?? 'GET', route }, seconds);
      if (logsRequests) (locals.log as Logger).debug({ method: req.method, path: loggedPath(path), status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    return locals as unknown as RequestLocals;
  };
}

/**
 * The token engine's own paths (`isEnginePath`), answered before express sees the request:
 * what every request gets (the request memo, id, logger, metrics and security headers), then the
 * token endpoint's rate limit, then the engine. express gives a request and its response its own
 * prototypes, which slowed every property access the engine makes on them after it: measured on
 * `POST /token`, an express app holding nothing but the engine cost a third of its throughput.
 * These paths use none of what express adds. Returns false, having done nothing, for a request
 * that is not theirs, or that needs express: a token request without HTTP Basic client
 * authentication is limited per IP, which is express's `req.ip` behind a trusted proxy.
 */
function engineRoutes(deps: {
  engine: TokenEngine;
  limits: RateLimits;
  begin: ReturnType<typeof requestStarter>;
  headers: (res: http.ServerResponse) => void;
}): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (!isEnginePath(path)) return false;
    const limited = path === '/token' && req.method === 'POST';
    const clientId = limited ? basicClientId(req) : undefined;
    if (limited && clientId === undefined) return false;
    runInRequestScope(() => {
      const { log } = deps.begin(req, res, ((res as { locals?: Record<string, unknown> }).locals = {}), path);
      deps.headers(res);
      if (clientId === undefined) return deps.engine.handle(req, res);
      deps.limits.tokenForClient(clientId, res, log).then(
        (allowed) => allowed && deps.engine.handle(req, res),
        (cause: unknown) => {
          // As the error handler would answer it, in the token endpoint's format.
          const error = toRealmgateError(cause);
          const ref = newReference();
          logFailure(log, error, ref, { method: req.method, path });
          res.statusCode = error.status;
          res.setHeader('cache-control', 'no-store');
          res.setHeader('content-type', 'application/json; charset=utf-8');
          res.end(JSON.stringify({ error: 'server_error', error_description: `${error.safeSentence()} (reference ${ref})` }));
        },
      );
    });
    return true;
  };
}

/** Paths only the token engine serves: `engineRoutes` answers them. */
const ENGINE_ONLY_PATHS = new Set(['/token', '/token/introspection', '/token/revocation', '/jwks', '/me', '/request', '/.well-known/openid-configuration']);
/** Paths the token engine serves with everything under them: authorization (and its resume, `/auth/:uid`) and end_session. */
const ENGINE_TREES = ['/auth', '/session/end'];

/** True for a path only the token engine serves; no express route matches one. */
function isEnginePath(p: string): boolean {
  return ENGINE_ONLY_PATHS.has(p) || ENGINE_TREES.some((tree) => p === tree || p.startsWith(`${tree}/`));
}

/** Paths that are their own metric label (and label what lies under them, such as `/auth/:uid`). */
const LABELLED_PATHS = [...ENGINE_ONLY_PATHS, ...ENGINE_TREES, '/healthz', '/readyz', '/metrics'];
const LABELLED = new Set(LABELLED_PATHS);

/**
 * A path as the request log writes it: the upstream answer handed to an interaction (or to
 * `/account`) sealed in the URL is written as `(sealed)`. It is encrypted and bound to its
 * browser, but a log is no place for it.
 */
function loggedPath(p: string): string {
  return p.replace(/^(\/interaction\/[^/]+\/federated\/[^/]+\/|\/account\/linked\/[^/]+\/)v1\.[^/]+$/, '$1(sealed)');
}

/** A low-cardinality label for a path: ids and aliases replaced. */
function routeLabel(p: string): string {
  if (p.startsWith('/interaction/')) return '/interaction/:uid' + (p.split('/').length > 3 ? '/:action' : '');
  if (p.startsWith('/federation/')) return '/federation/:alias/' + p.split('/').slice(3).join('/');
  if (p.startsWith('/admin/api/')) return '/admin/api/' + (p.split('/')[3] ?? '');
  if (LABELLED.has(p)) return p;
  const under = LABELLED_PATHS.find((k) => p.startsWith(`${k}/`));
  return under ?? 'other';
}

/** A running Realmgate node. */
export interface Realmgate {
  app: Express;
  services: Services;
  /** The node's database handle: for tools and tests that look at rows; the node's own code goes through `services.store`. */
  db: Knex;
  /** The node's periodic work (started with the node); `jobs.run(name)` runs one now. */
  jobs: Jobs;
  /** Listens on `config.port`/`config.host` (or the given port); resolves with the bound URL. */
  listen(port?: number): Promise<string>;
  /**
   * Stops timers, drains the HTTP server (no new connections; requests in flight answered with
   * `Connection: close`; idle keep-alive connections closed) and, when it owns it, closes the database.
   */
  close(): Promise<void>;
}

/** Builds a Realmgate node: services, express app with every route, and its background jobs. */
export async function createRealmgate(
  config: Config,
  options: StartOptions = {},
): Promise<Realmgate> {
  const { services, db, ownsDb } = await openServices(config, options);
  const { logger, metrics, views, engine } = services;
  await ensureAdminClient(services);
  await ensureAccountClient(services);

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  const begin = requestStarter(logger, metrics);
  const headers = securityHeaderSetter({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false });
  // One memo per request, so version reads several steps of a request need are sent once.
  app.use((_req, _res, next) => runInRequestScope(next));
  app.use((req, res, next) => {
    begin(req, res, res.locals, req.path);
    headers(res);
    next();
  });
  app.use('/assets', express.static(publicDir, { maxAge: '1h', index: false }));
  app.use(operationsRoutes(services));

  const pageCsp = helmet.contentSecurityPolicy({
    directives: { defaultSrc: ["'self'"], formAction: null, frameAncestors: ["'none'"], scriptSrc: ["'none'"] },
  });
  app.use(['/interaction', '/federation', '/account'], pageCsp);
  // Rate limits (shared database counters), before the routes they protect.
  const limits = createRateLimits({ rateLimitCounters: services.store.rateLimitCounters, views, logger }, config.rateLimits);
  app.post('/token', limits.token);
  app.post('/interaction/:uid/discover', limits.discover);
  app.post('/interaction/:uid/search', limits.discover);
  app.post('/interaction/:uid/passkey', limits.discover);
  app.get('/federation/:alias/start', limits.federationStart);
  app.post('/interaction/:uid/federate', limits.federationStart);
  app.get('/interaction/:uid/start/:alias', limits.federationStart);
  app.use('/admin/api', limits.admin);
  app.post(['/interaction/:uid/register', '/interaction/:uid/forgot-password'], limits.mail);
  // What `engineRoutes` left to express (a token request authenticated other than by HTTP Basic).
  app.use((req, res, next) => (ENGINE_ONLY_PATHS.has(req.path) ? engine.handle(req, res) : next()));
  const federation = createFederation(services);
  app.use('/admin/api', adminRoutes(services, { openContext: federation.context }));
  const interactions = new InteractionService({ engine, states: services.interactionStates });
  const linking = { store: services.store };
  const displayName = (alias: string) => federation.cache.displayName(alias) ?? alias;
  const directory = withOpenProviders(services.directory, federation.cache);
  const totp = { factors: services.mfaFactors, throttle: services.throttle, issuerName: new URL(config.issuer).host };
  const webauthn = { rp: relyingPartyOf(config.issuer), credentials: services.webauthnCredentials, challenges: services.webauthnChallenges, throttle: services.throttle };
  app.use(webauthnScriptRoutes());
  app.use(
    interactionRoutes({
      interactions,
      linking,
      engine,
      accounts: services.accounts,
      termsAcceptances: services.termsAcceptances,
      loginSessions: services.loginSessions,
      totp,
      webauthn,
      throttle: services.throttle,
      directory,
      csrf: services.csrf,
      views,
      logger,
      metrics,
      displayName,
      displayNames: (aliases) => services.providers.displayNames(aliases),
      loginPage: homeRealmLoginPage({ directory }),
      federation: federation.flow,
      issuer: config.issuer,
      mailer: services.mailer,
      emailLinks: services.emailLinks,
      outbox: services.outbox,
    }),
  );
  app.use(federation.routes);
  app.use(accountRoutes({ services, linking, federation: federation.flow, displayName, totp, webauthn }));
  app.use((req, res) => engine.handle(req, res));
  // One error handler for every route: the admin API answers problem+json, pages the error page.
  app.use(errorHandler({ views, logger, displayName: (alias) => federation.cache.displayName(alias) }));

  const jobs = nodeJobs(services, federation);
  jobs.start();
  // In the background: until the listener is connected the caches read versions, and readiness never waits for it.
  void services.changes.start();

  let server: DrainingServer | undefined;
  return {
    app,
    services,
    db,
    jobs,
    async listen(port = config.port) {
      const engineFirst = engineRoutes({ engine, limits, begin, headers });
      server = await listenDraining((req, res) => engineFirst(req, res) || void app(req, res), { port, host: config.host, keepAliveTimeoutMs: 5_000 });
      return server.url;
    },
    async close() {
      await jobs.stop();
      await server?.close();
      await services.changes.close();
      if (ownsDb) await closeDatabase(db);
    },
  };
}

/** Deletes expired rows (the CLI's `purge`); the purge job runs it on every node. */
export { purge } from './jobs/purge.ts';
