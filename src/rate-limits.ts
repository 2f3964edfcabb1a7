/**
 * Request rate limits on the endpoints an attacker can drive cheaply: the token endpoint (per
 * client, else per IP), home-realm discovery (`POST /interaction/:uid/discover`, per IP: it tells
 * which email domains belong to which provider), the start of a federated login (per IP: each
 * start writes a login transaction and sends the browser upstream), the pages that send mail
 * (registration and password reset, per IP) and the admin API (per IP).
 *
 * The counters are rate-limiter-flexible's, kept in the shared database (its PostgreSQL store, on
 * PostgreSQL and PGlite alike, through the store's `RateLimitCounters`): with several nodes behind a load balancer, a limit
 * counted in each node's memory would be N times the configured one. If the database cannot
 * count (it is down), an in-memory limiter per node takes over rather than failing the request.
 * A node reserves points in blocks (`rate-limit-lease.ts`): one statement per block, not per
 * request, and still never more admitted across the nodes than the limit.
 * An answer over the limit is a 429 with `Retry-After`, in the endpoint's own format.
 */
import type { Request, RequestHandler, Response } from 'express';
import { RateLimiterMemory, RateLimiterPostgres } from 'rate-limiter-flexible';
import { RealmgateError, newReference } from './errors.ts';
import { sendErrorPage, sendProblem } from './errors/render.ts';
import type { Views } from './interaction/views.ts';
import type { Logger } from './logger.ts';
import { LeasedLimiter } from './rate-limit-lease.ts';
import { RATE_LIMIT_TABLE, type RateLimitCounters } from './store/rate-limit-counters.ts';

/** Requests allowed per minute for each limited endpoint; 0 turns that limit off. */
export interface RateLimitSettings {
  tokenPerMinute: number;
  discoverPerMinute: number;
  federationStartPerMinute: number;
  adminPerMinute: number;
  /** Registration and password-reset mails asked for, per IP. */
  mailPerMinute: number;
}

/** The limiters as express middleware, mounted once in `app.ts`. */
export interface RateLimits {
  /** `POST /token`: per client (its HTTP Basic client_id), else per IP; an OAuth error body. */
  token: RequestHandler;
  /** `POST /interaction/:uid/discover`: per IP; the safe page. */
  discover: RequestHandler;
  /** `GET /federation/:alias/start` and `POST /interaction/:uid/federate`: per IP; the safe page. */
  federationStart: RequestHandler;
  /** `/admin/api/*`: per IP; problem+json. */
  admin: RequestHandler;
  /** `POST /interaction/:uid/register` and `POST /interaction/:uid/forgot-password` (each may send a mail): per IP; the safe page. */
  mail: RequestHandler;
}

/** The client_id of HTTP Basic client authentication, if the request carries it. */
function basicClientId(req: Request): string | undefined {
  const header = req.get('authorization');
  if (!header?.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon)).slice(0, 200);
  } catch {
    return undefined;
  }
}

/** How a limited endpoint answers 429. */
type Refusal = (req: Request, res: Response, retryAfterSeconds: number) => void;

/**
 * Builds the limiters. `views` renders the page refusals; `logger` gets one warn line when a node
 * first refuses a key in a window (not one per refused request, which an attacker controls).
 */
export function createRateLimits(deps: { rateLimitCounters: RateLimitCounters; views: Views; logger: Logger }, settings: RateLimitSettings): RateLimits {
  const storeClient = deps.rateLimitCounters.client();
  const build = (name: string, perMinute: number): RateLimiterPostgres | undefined =>
    perMinute > 0
      ? new RateLimiterPostgres({
          storeClient,
          storeType: 'client',
          tableName: RATE_LIMIT_TABLE,
          tableCreated: true,
          clearExpiredByTimeout: false,
          keyPrefix: name,
          points: perMinute,
          duration: 60,
          insuranceLimiter: new RateLimiterMemory({ keyPrefix: name, points: perMinute, duration: 60 }),
        })
      : undefined;

  // Logged once per key and window below, not per refused request: the pages and problems carry a reference all the same.
  const page: Refusal = (_req, res, retryAfter) =>
    sendErrorPage(res, deps.views, new RealmgateError('too_many_requests', { detail: 'page rate limit', headers: { 'retry-after': String(retryAfter) } }), newReference());
  const oauth: Refusal = (_req, res, retryAfter) => {
    res.status(429).set('cache-control', 'no-store').set('retry-after', String(retryAfter));
    res.json({ error: 'temporarily_unavailable', error_description: `Too many token requests; retry after ${retryAfter} seconds.` });
  };
  const problem: Refusal = (_req, res, retryAfter) =>
    sendProblem(res, new RealmgateError('too_many_requests', {
      detail: 'admin API rate limit',
      safeMessage: `Too many admin API requests; retry after ${retryAfter} seconds.`,
      headers: { 'retry-after': String(retryAfter) },
    }), newReference());

  const middleware = (name: string, perMinute: number, keyOf: (req: Request) => string, refuse: Refusal): RequestHandler => {
    const limiter = build(name, perMinute);
    if (!limiter) return (_req, _res, next) => next();
    const leased = new LeasedLimiter(limiter, perMinute);
    return (req, res, next) => {
      const key = keyOf(req);
      leased.consume(key).then(
        (decision) => {
          if (decision.allowed) return next();
          if (decision.first) {
            const log = (res.locals.log as Logger | undefined) ?? deps.logger;
            log.warn({ limit: name, key, per_minute: perMinute, retry_after: decision.retryAfterSeconds }, 'rate limit reached');
          }
          refuse(req, res, decision.retryAfterSeconds);
        },
        (error: unknown) => next(error),
      );
    };
  };

  const ip = (req: Request) => `ip:${req.ip ?? 'unknown'}`;
  return {
    token: middleware('token', settings.tokenPerMinute, (req) => {
      const clientId = basicClientId(req);
      return clientId ? `client:${clientId}` : ip(req);
    }, oauth),
    discover: middleware('discover', settings.discoverPerMinute, ip, page),
    federationStart: middleware('federation_start', settings.federationStartPerMinute, ip, page),
    admin: middleware('admin', settings.adminPerMinute, ip, problem),
    mail: middleware('mail', settings.mailPerMinute, ip, page),
  };
}
