import type { ErrorRequestHandler, Response } from 'express';
import type { z } from 'zod';
import { newReference } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { isBodyParserError } from '../refused-bodies.ts';

/** One invalid field of a request: `field` is a dotted path into the JSON body or a query parameter name. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** Stable problem codes of the admin API; each becomes the `type` URI `urn:realmgate:problem:<code>`. */
export type ProblemCode =
  | 'invalid_request'
  | 'malformed_json'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'precondition_failed'
  | 'upstream_unavailable'
  | 'internal';

const TITLES: Record<ProblemCode, string> = {
  invalid_request: 'The request is invalid',
  malformed_json: 'The body is not valid JSON',
  unsupported_media_type: 'The body must be JSON',
  payload_too_large: 'The body is too large',
  unauthorized: 'Authentication required',
  forbidden: 'Not allowed',
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict with the current state',
  precondition_failed: 'The resource changed since it was read',
  upstream_unavailable: 'The upstream provider could not be used',
  internal: 'Something went wrong on our side',
};

const STATUSES: Record<ProblemCode, number> = {
  invalid_request: 400,
  malformed_json: 400,
  unsupported_media_type: 415,
  payload_too_large: 413,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  precondition_failed: 412,
  upstream_unavailable: 502,
  internal: 500,
};

/** An admin API failure that becomes an `application/problem+json` response. */
export class AdminProblem extends Error {
  readonly code: ProblemCode;
  readonly status: number;
  readonly detail: string;
  readonly errors: FieldProblem[] | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ProblemCode, detail: string, options: { errors?: FieldProblem[]; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(detail, { cause: options.cause });
    this.name = 'AdminProblem';
    this.code = code;
    this.status = STATUSES[code];
    this.detail = detail;
    this.errors = options.errors;
    this.headers = options.headers ?? {};
  }
}

/** A 400 naming every invalid field. */
export function invalidFields(errors: FieldProblem[], detail?: string): AdminProblem {
  const names = [...new Set(errors.map((e) => e.field))];
  return new AdminProblem('invalid_request', detail ?? `Invalid field${names.length > 1 ? 's' : ''}: ${names.join(', ')}.`, { errors });
}

/** A 404 for a resource that does not exist. */
export function notFound(what: string, id: string): AdminProblem {
  return new AdminProblem('not_found', `No ${what} "${id}".`);
}

/** Turns zod issues into field problems, one per unknown key, prefixed with `prefix` when given. */
export function zodProblems(error: z.ZodError, prefix = ''): FieldProblem[] {
  const join = (path: PropertyKey[]) => [prefix, ...path.map(String)].filter(Boolean).join('.');
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: join([...issue.path, key]), message: 'is not a recognised field' }));
    }
    return [{ field: join(issue.path) || '(body)', message: issue.message }];
  });
}

/** Writes a problem document. */
export function sendProblem(res: Response, problem: AdminProblem): void {
  res.status(problem.status).set(problem.headers).type('application/problem+json').json({
    type: `urn:realmgate:problem:${problem.code}`,
    title: TITLES[problem.code],
    status: problem.status,
    detail: problem.detail,
    ...(problem.errors ? { errors: problem.errors } : {}),
  });
}

/** The admin API's one error handler: problems as they are, body-parser failures as 400/413/415, the rest as a logged 500 with a reference. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof AdminProblem) return sendProblem(res, err);
    const log = (res.locals.log as Logger | undefined) ?? logger;
    if (isBodyParserError(err)) {
      const problem = bodyProblem(err.type);
      // The sender's fault: one warn line with the code, never an error with a stack.
      log.warn({ code: problem.code, status: problem.status, type: err.type, limit: (err as { limit?: number }).limit, length: (err as { length?: number }).length }, 'admin API request body refused');
      return sendProblem(res, problem);
    }
    if (err instanceof URIError && (err as { status?: number }).status === 400) {
      // express could not decode a path parameter (`%E0%A4%A`): the client's fault, not ours.
      const problem = invalidFields([{ field: '(path)', message: 'is not valid percent-encoding' }], 'The URL path is not valid percent-encoding.');
      log.warn({ code: problem.code, status: problem.status }, 'admin API request path refused');
      return sendProblem(res, problem);
    }
    const ref = newReference();
    log.error({ err, ref }, 'admin API request failed');
    sendProblem(res, new AdminProblem('internal', `The request failed (ref ${ref}).`));
  };
}

/** The problem for a body-parser refusal: malformed JSON, too large, not UTF-8. */
function bodyProblem(type: string): AdminProblem {
  switch (type) {
    case 'entity.too.large':
    case 'parameters.too.many':
      return new AdminProblem('payload_too_large', 'The body is larger than the admin API accepts (1 MB).');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new AdminProblem('unsupported_media_type', 'The body must be UTF-8 JSON.');
    default:
      return new AdminProblem('malformed_json', 'The body could not be parsed as JSON.');
  }
}
