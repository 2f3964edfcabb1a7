/**
 * The one express error handler: whatever a route threw becomes a RealmgateError, is logged once
 * with a new reference (refused input at `warn` without a stack, our own failures at `error`
 * with the cause), and is answered as a problem document (the admin API, or a client that asks
 * for JSON) or as the HTML error page (everything a browser sees).
 */
import type { ErrorRequestHandler, Request } from 'express';
import { newReference, type RealmgateError } from '../errors.ts';
import type { Views } from '../interaction/views.ts';
import type { Logger } from '../logger.ts';
import { errorSpec } from './codes.ts';
import { knownErrorFields, toRealmgateError } from './known-errors.ts';
import { sendErrorPage, sendProblem, type DisplayName } from './render.ts';

/** The log level of `error`: the table's, or `warn` below 500 and `error` from 500. */
export function logLevelOf(error: RealmgateError): 'warn' | 'error' {
  return errorSpec(error.code).log ?? (error.status >= 500 ? 'error' : 'warn');
}

/** The messages of `error`'s cause chain, outermost first, without stacks. */
function causeMessages(error: Error): string[] {
  const messages: string[] = [];
  for (let e: unknown = error.cause; e instanceof Error && messages.length < 5; e = e.cause) messages.push(e.message);
  return messages;
}

/**
 * Logs `error` once under `ref`: at `warn` with its code, status and detail (no stack: refused
 * input must not flood the error log), or at `error` with the error and its cause.
 */
export function logFailure(log: Logger, error: RealmgateError, ref: string, fields: Record<string, unknown> = {}, message?: string): void {
  const base = { ref, code: error.code, status: error.status, ...(error.alias ? { alias: error.alias } : {}), ...fields };
  if (logLevelOf(error) === 'warn') {
    const causes = causeMessages(error);
    log.warn({ ...base, detail: error.message, ...(causes.length ? { causes } : {}) }, message ?? 'request refused');
  } else {
    log.error({ ...base, err: error }, message ?? 'request failed');
  }
}

/** True when the answer should be a problem document: the admin API, or a client preferring JSON to HTML. */
function wantsProblem(req: Request): boolean {
  if (req.originalUrl.startsWith('/admin/api')) return true;
  return req.accepts(['html', 'application/problem+json', 'application/json']) !== 'html';
}

/** The error handler for every route; `displayName` names providers in the safe sentences. */
export function errorHandler(deps: { views: Views; logger: Logger; displayName?: DisplayName }): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const error = toRealmgateError(err);
    const ref = newReference();
    const log = (res.locals.log as Logger | undefined) ?? deps.logger;
    logFailure(log, error, ref, { method: req.method, path: req.path, ...knownErrorFields(err) });
    // Too late for an answer: end the connection rather than leave a half-written one open.
    if (res.headersSent) return void req.socket.destroy();
    if (wantsProblem(req)) sendProblem(res, error, ref, deps.displayName);
    else sendErrorPage(res, deps.views, error, ref, deps.displayName);
  };
}
