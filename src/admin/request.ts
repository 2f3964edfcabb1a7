import express, { type Request, type RequestHandler } from 'express';
import type { z } from 'zod';
import { AdminProblem, invalidFields, zodProblems } from './problems.ts';

/** Media types the admin API reads as JSON: `application/json`, `application/merge-patch+json` and other `+json` types. */
const JSON_TYPES = ['application/json', 'application/*+json'];

/** Parses JSON bodies (up to 1 MB: SAML metadata can be large) and refuses other media types on writes with a body. */
export function jsonBody(): RequestHandler[] {
  const parse = express.json({ type: JSON_TYPES, limit: '1mb', strict: false });
  const require: RequestHandler = (req, _res, next) => {
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && !req.is(JSON_TYPES)) {
      throw new AdminProblem('unsupported_media_type', 'Send the body as application/json (or application/merge-patch+json for PATCH).');
    }
    next();
  };
  return [require, parse];
}

/** The request body, or undefined when none was sent. */
export function bodyOf(req: Request): unknown {
  return req.body as unknown;
}

/** Parses the query string with a zod schema; unknown parameters and bad values become a 400 naming each. */
export function parseQuery<T extends z.ZodType>(schema: T, req: Request): z.output<T> {
  const parsed = schema.safeParse(req.query);
  if (!parsed.success) throw invalidFields(zodProblems(parsed.error));
  return parsed.data;
}

/** A path parameter as a string (express 5 types allow arrays for wildcards). */
export function param(req: Request, name: string): string {
  const value = req.params[name];
  return Array.isArray(value) ? value.join('/') : String(value);
}
