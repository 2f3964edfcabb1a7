import type { z } from 'zod';
import { RealmgateError, type FieldProblem } from '../errors.ts';

export type { FieldProblem } from '../errors.ts';

/** A 400 naming every invalid field. */
export function invalidFields(errors: FieldProblem[], detail?: string): RealmgateError {
  const fields = [...new Set(errors.map((e) => e.field))];
  return new RealmgateError('invalid_request', { params: { fields }, errors, safeMessage: detail, detail: `invalid fields: ${fields.join(', ')}` });
}

/** A 404 for a resource that does not exist. */
export function notFound(what: string, id: string): RealmgateError {
  return new RealmgateError('not_found', { params: { what, id }, detail: `no ${what} ${JSON.stringify(id)}` });
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
