import { z } from 'zod';

/** Page size when the request names none. */
export const DEFAULT_PAGE_LIMIT = 50;
/** Largest page a request may ask for. */
export const MAX_PAGE_LIMIT = 200;

/** Query fields every list endpoint accepts: `limit` and the opaque `cursor` from the previous page. */
export const pageQuery = {
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(MAX_PAGE_LIMIT, `must be at most ${MAX_PAGE_LIMIT}`)
    .default(DEFAULT_PAGE_LIMIT),
  cursor: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      const decoded = decodeCursor(value);
      if (decoded === undefined) {
        ctx.addIssue({ code: 'custom', message: 'is not a cursor returned by this API' });
        return z.NEVER;
      }
      return decoded;
    }),
};

/** Encodes the sort key of the last item of a page as an opaque cursor. */
export function encodeCursor(key: string | number): string {
  return Buffer.from(JSON.stringify({ k: key })).toString('base64url');
}

function decodeCursor(cursor: string): string | number | undefined {
  try {
    const value = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: unknown }).k;
    return typeof value === 'string' || typeof value === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A page of a list: the items and the cursor of the next page (null on the last one). */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/**
 * Builds a page from `limit + 1` fetched rows: the extra row only tells that another page exists.
 */
export function toPage<R, T>(rows: R[], limit: number, keyOf: (row: R) => string | number, present: (row: R) => T): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(present),
    next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
