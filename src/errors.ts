import crypto from 'node:crypto';

const REF_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';

/** A short reference (`7GQ2-K9`) shown to the user and logged with the real reason. */
export function newReference(): string {
  const bytes = crypto.randomBytes(6);
  const chars = [...bytes].map((b) => REF_ALPHABET[b % REF_ALPHABET.length]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

/** What a failure means to the person in front of the browser, by stable code. */
const SAFE_MESSAGES: Record<string, string> = {
  interaction_expired: 'Your sign-in took too long and has expired. Go back to the application and start again.',
  csrf_invalid: 'This form was already used or has expired. Go back to the application and start again.',
  bad_request: 'The request was not understood. Go back to the application and start again.',
  not_found: 'This page does not exist.',
  throttled: 'Too many failed sign-in attempts. Wait a few minutes and try again.',
  payload_too_large: 'What was sent to this page is larger than it accepts. Go back to the application and start again.',
  unsupported_media_type: 'What was sent to this page is in a form it does not read. Go back to the application and start again.',
  internal: 'Something went wrong on our side. Try again in a moment.',
};

/**
 * An error with a stable `code`, a sentence safe to show (`safeMessage`), the HTTP status, and
 * the internal detail (`message`, `cause`) that only goes to the log.
 */
export class RealmgateError extends Error {
  readonly code: string;
  readonly status: number;
  readonly safeMessage: string;

  constructor(code: string, options: { status?: number; detail?: string; safeMessage?: string; cause?: unknown } = {}) {
    super(options.detail ?? code, { cause: options.cause });
    this.name = 'RealmgateError';
    this.code = code;
    this.status = options.status ?? 400;
    this.safeMessage = options.safeMessage ?? SAFE_MESSAGES[code] ?? SAFE_MESSAGES.internal!;
  }
}
