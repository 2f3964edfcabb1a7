/**
 * Reading an identity out of an OAuth 2.0 provider's JSON answers: values by JSON pointer
 * (RFC 6901), the subject as a non-empty string, and the primary verified address of a
 * GitHub-style emails list.
 */

/** The value `pointer` (RFC 6901) names in `document`, or undefined when it names nothing. */
export function readPointer(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  let value = document;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value) && /^(0|[1-9]\d*)$/.test(token)) value = value[Number(token)];
    else if (value && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, token)) value = (value as Record<string, unknown>)[token];
    else return undefined;
  }
  return value;
}

/** A subject read from an answer: a non-empty string, or a safe integer as its decimal string (GitHub's numeric `id`). */
export function subjectFrom(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '' && value.length <= 255) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/** True for the JSON values providers use to say "verified": `true` or `"true"`. */
export const isTrue = (value: unknown): boolean => value === true || value === 'true';

/** The address an emails list offers, and whether the provider verified it. */
export interface ListedEmail {
  email: string;
  verified: boolean;
}

/**
 * The address to use from a list of `{email, primary, verified}`: the primary one when it is
 * verified, else any verified one, else the primary one unverified; undefined for an empty list.
 * Returns null when `answer` is not such a list.
 */
export function emailFromList(answer: unknown): ListedEmail | undefined | null {
  if (!Array.isArray(answer)) return null;
  const entries = answer.filter((e): e is { email: string; primary?: unknown; verified?: unknown } => !!e && typeof e === 'object' && typeof (e as { email?: unknown }).email === 'string');
  const primaryVerified = entries.find((e) => isTrue(e.primary) && isTrue(e.verified));
  const verified = primaryVerified ?? entries.find((e) => isTrue(e.verified));
  if (verified) return { email: verified.email, verified: true };
  const primary = entries.find((e) => isTrue(e.primary));
  return primary ? { email: primary.email, verified: false } : undefined;
}
