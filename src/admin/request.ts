import express, { type Request, type RequestHandler } from 'express';
import type { z } from 'zod';
import { RealmgateError } from '../errors.ts';
import { invalidFields, zodProblems, type FieldProblem } from './problems.ts';

/** Media types the admin API reads as JSON: `application/json`, `application/merge-patch+json` and other `+json` types. */
const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * Deepest nesting of arrays and objects a JSON body may have. Every admin resource is a few
 * levels deep (`settings.authorization_params`); a deeper body is refused before merge patches or
 * validators recurse into it.
 */
export const MAX_JSON_DEPTH = 32;

/** Longest path parameter (alias, client_id, id) looked up; longer ones cannot exist. */
const MAX_PARAM_LENGTH = 256;

/** NUL cannot be stored in PostgreSQL text or jsonb; other C0 controls are never meant in identifiers. */
const NUL = '\u0000';
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The first problem of a parsed JSON body: nesting beyond `MAX_JSON_DEPTH`, or a NUL character
 * in a string or a key (which the database cannot store). Walks the value with an explicit
 * stack, so no depth can exhaust the call stack.
 */
export function jsonBodyProblem(body: unknown): FieldProblem | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: body, path: '', depth: 0 }];
  while (stack.length) {
    const { value, path, depth } = stack.pop()!;
    const field = path || '(body)';
    if (typeof value === 'string') {
      if (value.includes(NUL)) return { field, message: 'must not contain the NUL character' };
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_JSON_DEPTH) return { field, message: `nests deeper than ${MAX_JSON_DEPTH} levels` };
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    for (const [key, child] of entries) {
      if (key.includes(NUL)) return { field, message: 'has a key with the NUL character' };
      stack.push({ value: child, path: path ? `${path}.${key}` : key, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * Parses JSON bodies (up to 1 MB: SAML metadata can be large), refuses other media types on
 * writes with a body, and refuses bodies nested deeper than `MAX_JSON_DEPTH` or holding NUL
 * characters, naming where.
 */
export function jsonBody(): RequestHandler[] {
  const parse = express.json({ type: JSON_TYPES, limit: '1mb', strict: false });
  const require: RequestHandler = (req, _res, next) => {
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && !req.is(JSON_TYPES)) {
      throw new RealmgateError('unsupported_media_type', { safeMessage: 'Send the body as application/json (or application/merge-patch+json for PATCH).' });
    }
    next();
  };
  const shape: RequestHandler = (req, _res, next) => {
    const problem = req.body === undefined ? undefined : jsonBodyProblem(req.body);
    if (problem) throw invalidFields([problem], `The body ${problem.field === '(body)' ? '' : `at ${problem.field} `}${problem.message}.`);
    next();
  };
  return [require, parse, shape];
}

/** The request body, or undefined when none was sent. */
export function bodyOf(req: Request): unknown {
  return req.body as unknown;
}

/** Refuses query values with control characters (NUL cannot reach the database) before the schema reads them. */
function queryProblems(query: Request['query']): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const [name, value] of Object.entries(query)) {
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'string' && CONTROL.test(v))) problems.push({ field: name, message: 'must not contain control characters' });
  }
  return problems;
}

/** Parses the query string with a zod schema; unknown parameters and bad values become a 400 naming each. */
export function parseQuery<T extends z.ZodType>(schema: T, req: Request): z.output<T> {
  const control = queryProblems(req.query);
  if (control.length) throw invalidFields(control);
  const parsed = schema.safeParse(req.query);
  if (!parsed.success) throw invalidFields(zodProblems(parsed.error));
  return parsed.data;
}

/**
 * A path parameter as a string (express 5 types allow arrays for wildcards). One with control
 * characters or longer than any stored identifier is a 400 naming it, before any lookup.
 */
export function param(req: Request, name: string): string {
  const raw = req.params[name];
  const value = Array.isArray(raw) ? raw.join('/') : String(raw);
  if (CONTROL.test(value)) throw invalidFields([{ field: name, message: 'must not contain control characters' }]);
  if (value.length > MAX_PARAM_LENGTH) throw invalidFields([{ field: name, message: `must be at most ${MAX_PARAM_LENGTH} characters` }]);
  return value;
}
