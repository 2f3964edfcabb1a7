/**
 * The two ways a RealmgateError is shown: the HTML error page (`views/error.njk`, with the
 * reference the log line carries) and an RFC 9457 `application/problem+json` document. Neither
 * ever shows `message` or `cause`: those are for the log.
 */
import type { Response } from 'express';
import type { RealmgateError } from '../errors.ts';
import type { Views } from '../interaction/views.ts';
import { errorSpec } from './codes.ts';

/** Names a provider alias by its display name, when known. */
export type DisplayName = (alias: string) => string | undefined;

/** An RFC 9457 problem document, with the admin API's `errors` member and the log's `reference`. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { field: string; message: string }[];
  reference: string;
}

/** The problem document for `error`; `type` is `urn:realmgate:problem:<type>` from the code's table entry. */
export function problemDocument(error: RealmgateError, ref: string, displayName?: DisplayName): ProblemDocument {
  const spec = errorSpec(error.code);
  const type = spec.type ?? error.code;
  return {
    type: `urn:realmgate:problem:${type}`,
    title: errorSpec(type).title,
    status: error.status,
    detail: error.safeSentence(displayName),
    ...(error.errors && error.expose ? { errors: error.errors } : {}),
    reference: ref,
  };
}

/** The error page's HTML: the safe sentence and the reference, nothing else. */
export function errorPageHtml(views: Views, error: RealmgateError, ref: string, displayName?: DisplayName): string {
  return views.render('error.njk', { message: error.safeSentence(displayName), ref, code: error.code, status: error.status });
}

/** Writes `error` as the HTML error page, uncached, with its headers. */
export function sendErrorPage(res: Response, views: Views, error: RealmgateError, ref: string, displayName?: DisplayName): void {
  res.status(error.status).set(error.headers).set('cache-control', 'no-store').type('html').send(errorPageHtml(views, error, ref, displayName));
}

/** Writes `error` as `application/problem+json`, uncached, with its headers. */
export function sendProblem(res: Response, error: RealmgateError, ref: string, displayName?: DisplayName): void {
  res.status(error.status).set(error.headers).set('cache-control', 'no-store').type('application/problem+json').send(JSON.stringify(problemDocument(error, ref, displayName)));
}
