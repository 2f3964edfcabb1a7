import type { Request, Response } from 'express';
import { RealmgateError } from '../errors.ts';

/** The strong ETag of a resource version: `"<version>"`. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/** Sets the `ETag` header of a resource read or written at `version`. */
export function setEtag(res: Response, version: number): void {
  res.set('etag', etagOf(version));
}

/** What a request's `If-Match` allows: undefined when absent, `'*'` for any existing version, else the versions it names. */
export type IfMatch = '*' | number[] | undefined;

/** Reads the request's `If-Match`; a malformed entity tag names no version, so it never matches. */
export function ifMatchOf(req: Request): IfMatch {
  const header = req.get('if-match');
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  return header
    .split(',')
    .map((tag) => /^\s*"(\d{1,15})"\s*$/.exec(tag)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
}

/** Throws 412 when `If-Match` does not name the current version (`undefined`: the resource does not exist). */
export function checkIfMatch(condition: IfMatch, currentVersion: number | undefined): void {
  if (condition === undefined) return;
  if (currentVersion !== undefined && (condition === '*' || condition.includes(currentVersion))) return;
  throw new RealmgateError('precondition_failed', {
    safeMessage:
      currentVersion === undefined
        ? 'If-Match was given but the resource does not exist.'
        : `If-Match does not name the current version; the resource is at ETag ${etagOf(currentVersion)}. Read it again and retry.`,
    headers: currentVersion === undefined ? {} : { etag: etagOf(currentVersion) },
  });
}
