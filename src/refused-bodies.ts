/**
 * Request bodies the body parsers refuse (too large, too many fields, not parseable, an
 * unsupported charset) are the sender's fault: they answer 4xx with the safe page and are logged
 * at `warn` with their code and no stack, so a stream of oversized posts cannot flood the error
 * log. Mounted once for every page route, before the page error handler.
 */
import type { ErrorRequestHandler } from 'express';
import { RealmgateError, newReference } from './errors.ts';
import type { Views } from './interaction/views.ts';
import type { Logger } from './logger.ts';

/** What body-parser (express.urlencoded, express.json) attaches to the errors it throws. */
interface BodyParserError {
  type: string;
  status?: number;
  limit?: number;
  length?: number;
}

/** True for an error thrown by body-parser about the request body. */
export function isBodyParserError(error: unknown): error is Error & BodyParserError {
  if (!(error instanceof Error)) return false;
  const type = (error as unknown as Partial<BodyParserError>).type;
  return typeof type === 'string' && BODY_ERRORS[type] !== undefined;
}

/** Realmgate's code and status for each body-parser error type. */
const BODY_ERRORS: Readonly<Record<string, { code: string; status: number }>> = {
  'entity.too.large': { code: 'payload_too_large', status: 413 },
  'parameters.too.many': { code: 'payload_too_large', status: 413 },
  'entity.parse.failed': { code: 'bad_request', status: 400 },
  'entity.verify.failed': { code: 'bad_request', status: 400 },
  'request.aborted': { code: 'bad_request', status: 400 },
  'request.size.invalid': { code: 'bad_request', status: 400 },
  'charset.unsupported': { code: 'unsupported_media_type', status: 415 },
  'encoding.unsupported': { code: 'unsupported_media_type', status: 415 },
};

/** The body-parser error as a RealmgateError: stable code, status, safe sentence; the parser's detail for the log. */
export function refusedBody(error: Error & BodyParserError): RealmgateError {
  const { code, status } = BODY_ERRORS[error.type]!;
  return new RealmgateError(code, { status, detail: `${error.type}: ${error.message}` });
}

/**
 * The error handler for body-parser refusals on page routes (`/interaction`, `/federation`): the
 * safe page with a reference and the 4xx status; one warn line with the reference, code, type and
 * sizes. Any other error goes on to the page error handler.
 */
export function refusedBodyPage(deps: { views: Views; logger: Logger }): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (!isBodyParserError(err) || res.headersSent) return next(err);
    const error = refusedBody(err);
    const ref = newReference();
    const log = (res.locals.log as Logger | undefined) ?? deps.logger;
    log.warn({ ref, code: error.code, status: error.status, type: err.type, limit: err.limit, length: err.length, path: req.path }, 'request body refused');
    res.status(error.status).type('html').set('cache-control', 'no-store').send(deps.views.render('error.njk', { message: error.safeMessage, ref }));
  };
}
