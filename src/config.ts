import path from 'node:path';
import { z } from 'zod';

/** Realmgate's settings, parsed once from the environment and frozen. */
export interface Config {
  /** TCP port the HTTP server listens on. */
  readonly port: number;
  /** Address the HTTP server binds to. */
  readonly host: string;
  /** Public issuer identifier; every URL Realmgate hands out starts with it. */
  readonly issuer: string;
  /** PostgreSQL connection string; absent means embedded PGlite under `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Directory for the embedded database and the generated master key. */
  readonly dataDir: string;
  /** Base64 (32 bytes) key that seals secrets at rest; generated in embedded mode when absent. */
  readonly masterKey: string | undefined;
  /** Bootstrap admin client ensured on start, when both parts are set. */
  readonly adminClient: { readonly clientId: string; readonly clientSecret: string } | undefined;
  /** Lets admin-supplied URLs point at loopback and private addresses. */
  readonly allowPrivateNetwork: boolean;
  /** Directory whose templates override the built-in ones in `views/`. */
  readonly templatesDir: string | undefined;
  /** pino log level. */
  readonly logLevel: string;
  /** How often each node checks the database for rotated signing keys. */
  readonly keyRefreshSeconds: number;
  /** How often expired tokens, sessions and throttling rows are purged. */
  readonly purgeIntervalSeconds: number;
  /** Timeout for every request Realmgate makes to an upstream provider. */
  readonly upstreamTimeoutMs: number;
  /** Local claims beyond the standard ones (set by providers' claim mappings) released with the `profile` scope. */
  readonly extraClaims: readonly string[];
  /** Express `trust proxy` setting; defaults to one hop when the issuer is https, else off. */
  readonly trustProxy: boolean | number | string;
  /** Failed logins allowed per account within `loginThrottleWindowSeconds`. */
  readonly loginThrottleMaxFailures: number;
  /** Failed logins allowed per client IP within `loginThrottleWindowSeconds` (many users may share one IP). */
  readonly loginThrottleMaxFailuresPerIp: number;
  /** Window over which failed logins are counted. */
  readonly loginThrottleWindowSeconds: number;
  /** Longest progressive delay after failed sign-ins for one account from any IP (the per-account backoff cap). */
  readonly loginMaxDelaySeconds: number;
  /** Requests per minute (0: no limit) at the token endpoint per client, at home-realm discovery, at federation start and at the admin API per IP. */
  readonly rateLimits: {
    readonly tokenPerMinute: number;
    readonly discoverPerMinute: number;
    readonly federationStartPerMinute: number;
    readonly adminPerMinute: number;
    /** Registration and password-reset mails asked for per minute per IP. */
    readonly mailPerMinute: number;
  };
  /** The SMTP server mail goes through, and the sender; undefined when mail is not configured. */
  readonly mail: MailSettings | undefined;
  /** Longest a browser session at Realmgate lasts from sign-in, however active. */
  readonly sessionLifetimeSeconds: number;
  /** A browser session unused for this long ends (every request the session makes restarts it). */
  readonly sessionIdleTimeoutSeconds: number;
  /** How often each node looks for back-channel logout deliveries that are due. */
  readonly logoutDeliveryIntervalSeconds: number;
  /** Delay before the first retry of a failed back-channel logout; each next retry waits twice as long (at most an hour), with jitter. */
  readonly logoutRetryInitialSeconds: number;
  /** How long a failed back-channel logout is retried before it is given up (status `failed`). */
  readonly logoutRetryPeriodSeconds: number;
  /** Opened upstream providers each node keeps (least recently used closed first); size it above the providers in use at once. */
  readonly providerCacheSize: number;
  /** Client metadata records each node keeps (least recently used dropped first). */
  readonly clientCacheSize: number;
}

/** Where mail goes out (`REALMGATE_SMTP_URL`) and whom it is from (`REALMGATE_MAIL_FROM`). */
export interface MailSettings {
  /** smtp:// (STARTTLS when the server offers it) or smtps:// URL, credentials in its userinfo. */
  readonly smtpUrl: string;
  /** The From address, e.g. `Example Login <login@example.com>`. */
  readonly from: string;
}

const booleanText = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const positiveInt = (fallback: number) =>
  z.coerce.number({ error: 'must be a number' }).int('must be a whole number').positive('must be positive').default(fallback);

const perMinute = (fallback: number) =>
  z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must not be negative (0 turns the limit off)').default(fallback);

const envSchema = z.object({
  PORT: z.coerce.number({ error: 'must be a number' }).int().min(0).max(65535, 'must be a port number').default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  ISSUER: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://login.example.com' })
    .refine((v) => !v.endsWith('/'), 'must not end with a slash')
    .refine((v) => !new URL(v).search && !new URL(v).hash, 'must not have a query or fragment')
    .optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection string')
    .optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  REALMGATE_MASTER_KEY: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded (openssl rand -base64 32)')
    .optional(),
  REALMGATE_ADMIN_CLIENT_ID: z.string().min(1).optional(),
  REALMGATE_ADMIN_CLIENT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  REALMGATE_ALLOW_PRIVATE_NETWORK: booleanText.default(false),
  REALMGATE_TEMPLATES_DIR: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  REALMGATE_KEY_REFRESH_SECONDS: positiveInt(30),
  REALMGATE_PURGE_INTERVAL_SECONDS: positiveInt(300),
  REALMGATE_UPSTREAM_TIMEOUT_MS: positiveInt(5000),
  REALMGATE_TRUST_PROXY: z.string().optional(),
  REALMGATE_EXTRA_CLAIMS: z
    .string()
    .regex(/^\s*[a-z][a-z0-9_:.-]*(\s*,\s*[a-z][a-z0-9_:.-]*)*\s*$/i, 'must be a comma-separated list of claim names, e.g. department,employee_id')
    .optional(),
  REALMGATE_LOGIN_MAX_FAILURES: positiveInt(5),
  REALMGATE_LOGIN_MAX_FAILURES_PER_IP: positiveInt(50),
  REALMGATE_LOGIN_WINDOW_SECONDS: positiveInt(900),
  REALMGATE_LOGIN_MAX_DELAY_SECONDS: positiveInt(60),
  REALMGATE_RATE_LIMIT_TOKEN_PER_MINUTE: perMinute(600),
  REALMGATE_RATE_LIMIT_DISCOVER_PER_MINUTE: perMinute(120),
  REALMGATE_RATE_LIMIT_FEDERATION_START_PER_MINUTE: perMinute(120),
  REALMGATE_RATE_LIMIT_ADMIN_PER_MINUTE: perMinute(600),
  REALMGATE_RATE_LIMIT_MAIL_PER_MINUTE: perMinute(10),
  REALMGATE_SMTP_URL: z
    .url({ protocol: /^smtps?$/, error: 'must be an smtp:// or smtps:// URL such as smtps://user:password@mail.example.com:465' })
    .optional(),
  REALMGATE_MAIL_FROM: z
    .string()
    .max(320)
    .regex(/^(?:[^<>\r\n]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/, 'must be an address like login@example.com or "Example Login <login@example.com>"')
    .optional(),
  REALMGATE_SESSION_LIFETIME_SECONDS: positiveInt(14 * 24 * 3600),
  REALMGATE_SESSION_IDLE_TIMEOUT_SECONDS: positiveInt(24 * 3600),
  REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS: positiveInt(5),
  REALMGATE_LOGOUT_RETRY_INITIAL_SECONDS: positiveInt(10),
  REALMGATE_LOGOUT_RETRY_PERIOD_SECONDS: positiveInt(24 * 3600),
  REALMGATE_PROVIDER_CACHE_SIZE: positiveInt(10_000),
  REALMGATE_CLIENT_CACHE_SIZE: positiveInt(10_000),
});

/** Thrown by `loadConfig` with every problem in the environment listed at once. Start-up only, never HTTP: not a RealmgateError. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Realmgate cannot start, the configuration is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

/** Parses and validates the environment into a frozen `Config`, listing every problem at once. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (Boolean(e.REALMGATE_ADMIN_CLIENT_ID) !== Boolean(e.REALMGATE_ADMIN_CLIENT_SECRET)) {
    problems.push('REALMGATE_ADMIN_CLIENT_ID and REALMGATE_ADMIN_CLIENT_SECRET must be set together');
  }
  if (e.DATABASE_URL && !e.REALMGATE_MASTER_KEY) {
    problems.push('REALMGATE_MASTER_KEY is required with DATABASE_URL: every node sharing the database needs the same key (openssl rand -base64 32)');
  }
  if (e.REALMGATE_SMTP_URL && !e.REALMGATE_MAIL_FROM) {
    problems.push('REALMGATE_MAIL_FROM is required with REALMGATE_SMTP_URL: the sender address of the mails Realmgate sends');
  }
  if (e.REALMGATE_MAIL_FROM && !e.REALMGATE_SMTP_URL) {
    problems.push('REALMGATE_SMTP_URL is required with REALMGATE_MAIL_FROM: the SMTP server mail goes through');
  }
  if (problems.length) throw new ConfigError(problems);

  const config: Config = {
    port: e.PORT,
    host: e.HOST,
    issuer: e.ISSUER ?? `http://localhost:${e.PORT}`,
    databaseUrl: e.DATABASE_URL,
    dataDir: path.resolve(e.DATA_DIR),
    masterKey: e.REALMGATE_MASTER_KEY,
    adminClient:
      e.REALMGATE_ADMIN_CLIENT_ID && e.REALMGATE_ADMIN_CLIENT_SECRET
        ? Object.freeze({ clientId: e.REALMGATE_ADMIN_CLIENT_ID, clientSecret: e.REALMGATE_ADMIN_CLIENT_SECRET })
        : undefined,
    allowPrivateNetwork: e.REALMGATE_ALLOW_PRIVATE_NETWORK,
    templatesDir: e.REALMGATE_TEMPLATES_DIR ? path.resolve(e.REALMGATE_TEMPLATES_DIR) : undefined,
    logLevel: e.LOG_LEVEL,
    keyRefreshSeconds: e.REALMGATE_KEY_REFRESH_SECONDS,
    purgeIntervalSeconds: e.REALMGATE_PURGE_INTERVAL_SECONDS,
    upstreamTimeoutMs: e.REALMGATE_UPSTREAM_TIMEOUT_MS,
    extraClaims: Object.freeze((e.REALMGATE_EXTRA_CLAIMS ?? '').split(',').map((c) => c.trim()).filter(Boolean)),
    // An https issuer served over plain HTTP means a TLS-terminating proxy in front: trust one hop by default.
    trustProxy: e.REALMGATE_TRUST_PROXY !== undefined
      ? parseTrustProxy(e.REALMGATE_TRUST_PROXY)
      : (e.ISSUER ?? '').startsWith('https:') ? 1 : false,
    loginThrottleMaxFailures: e.REALMGATE_LOGIN_MAX_FAILURES,
    loginThrottleMaxFailuresPerIp: e.REALMGATE_LOGIN_MAX_FAILURES_PER_IP,
    loginThrottleWindowSeconds: e.REALMGATE_LOGIN_WINDOW_SECONDS,
    loginMaxDelaySeconds: e.REALMGATE_LOGIN_MAX_DELAY_SECONDS,
    rateLimits: Object.freeze({
      tokenPerMinute: e.REALMGATE_RATE_LIMIT_TOKEN_PER_MINUTE,
      discoverPerMinute: e.REALMGATE_RATE_LIMIT_DISCOVER_PER_MINUTE,
      federationStartPerMinute: e.REALMGATE_RATE_LIMIT_FEDERATION_START_PER_MINUTE,
      adminPerMinute: e.REALMGATE_RATE_LIMIT_ADMIN_PER_MINUTE,
      mailPerMinute: e.REALMGATE_RATE_LIMIT_MAIL_PER_MINUTE,
    }),
    mail: e.REALMGATE_SMTP_URL && e.REALMGATE_MAIL_FROM ? Object.freeze({ smtpUrl: e.REALMGATE_SMTP_URL, from: e.REALMGATE_MAIL_FROM }) : undefined,
    sessionLifetimeSeconds: e.REALMGATE_SESSION_LIFETIME_SECONDS,
    sessionIdleTimeoutSeconds: Math.min(e.REALMGATE_SESSION_IDLE_TIMEOUT_SECONDS, e.REALMGATE_SESSION_LIFETIME_SECONDS),
    logoutDeliveryIntervalSeconds: e.REALMGATE_LOGOUT_DELIVERY_INTERVAL_SECONDS,
    logoutRetryInitialSeconds: e.REALMGATE_LOGOUT_RETRY_INITIAL_SECONDS,
    logoutRetryPeriodSeconds: e.REALMGATE_LOGOUT_RETRY_PERIOD_SECONDS,
    providerCacheSize: e.REALMGATE_PROVIDER_CACHE_SIZE,
    clientCacheSize: e.REALMGATE_CLIENT_CACHE_SIZE,
  };
  return Object.freeze(config);
}
