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
import type { IncomingMessage, ServerResponse } from 'node:http';
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
  /**
   * The same limit for a token request answered without express (`app.ts`): for the client
   * `clientId` (the caller took it from HTTP Basic authentication). Resolves true when the request
   * may go on; otherwise the 429 has been sent.
   */
  tokenForClient(clientId: string, res: ServerResponse, log: Logger): Promise<boolean>;
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
export function basicClientId(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
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

/** The token endpoint's 429, in OAuth's error format; written with Node's own response methods, so it needs no express. */
function refuseToken(res: ServerResponse, retryAfterSeconds: number): void {
  res.statusCode = 429;
  res.setHeader('cache-control', 'no-store');
  res.setHeader('retry-after', String(retryAfterSeconds));
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: `Too many token requests; retry after ${retryAfterSeconds} seconds.` }));
}

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
  const oauth: Refusal = (_req, res, retryAfter) => refuseToken(res, retryAfter);
  const problem: Refusal = (_req, res, retryAfter) =>
    sendProblem(res, new RealmgateError('too_many_requests', {
      detail: 'admin API rate limit',
      safeMessage: `Too many admin API requests; retry after ${retryAfter} seconds.`,
      headers: { 'retry-after': String(retryAfter) },
    }), newReference());

  /** A limit's decision for `key`: allowed or not, with its one warn line on a node's first refusal of the key in a window. */
  const decider = (name: string, perMinute: number) => {
    const limiter = build(name, perMinute);
    if (!limiter) return undefined;
    const leased = new LeasedLimiter(limiter, perMinute);
    return async (key: string, log: Logger): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> => {
      const decision = await leased.consume(key);
      if (!decision.allowed && decision.first) log.warn({ limit: name, key, per_minute: perMinute, retry_after: decision.retryAfterSeconds }, 'rate limit reached');
      return decision;
    };
  };
  const middleware = (decide: ReturnType<typeof decider>, keyOf: (req: Request) => string, refuse: Refusal): RequestHandler => {
    if (!decide) return (_req, _res, next) => next();
    return (req, res, next) => {
      decide(keyOf(req), (res.locals.log as Logger | undefined) ?? deps.logger).then(
        (decision) => (decision.allowed ? next() : refuse(req, res, decision.retryAfterSeconds)),
        (error: unknown) => next(error),
      );
    };
  };

  const ip = (req: Request) => `ip:${req.ip ?? 'unknown'}`;
  const token = decider('token', settings.tokenPerMinute);
  return {
    token: middleware(token, (req) => {
      const clientId = basicClientId(req);
      return clientId ? `client:${clientId}` : ip(req);
    }, oauth),
    async tokenForClient(clientId, res, log) {
      const decision = token ? await token(`client:${clientId}`, log) : { allowed: true as const };
      if (!decision.allowed) refuseToken(res, decision.retryAfterSeconds);
      return decision.allowed;
    },
    discover: middleware(decider('discover', settings.discoverPerMinute), ip, page),
    federationStart: middleware(decider('federation_start', settings.federationStartPerMinute), ip, page),
    admin: middleware(decider('admin', settings.adminPerMinute), ip, problem),
    mail: middleware(decider('mail', settings.mailPerMinute), ip, page),
  };
}
