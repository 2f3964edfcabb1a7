/**
 * Every failure Realmgate can answer with, by stable code, in one table: its HTTP status, the
 * problem `type` and `title` it has in `application/problem+json`, the level its log line takes,
 * and the sentence the person (or the administrator) sees. `satisfies Record<ErrorCode, …>` makes
 * a new code without a sentence fail the type check.
 */

/** Stable failure codes. Persisted in logs and problem `type` URIs: add, never rename. */
export type ErrorCode =
  // Requests: pages and the admin API alike.
  | 'bad_request'
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
  | 'too_many_requests'
  | 'internal'
  // Sign-in pages (interaction, account page).
  | 'interaction_expired'
  | 'csrf_invalid'
  | 'provider_not_allowed'
  | 'account_not_provisioned'
  | 'account_disabled'
  | 'account_signed_out'
  | 'account_login_invalid'
  // Accounts and their sign-in methods.
  | 'email_taken'
  | 'identity_taken'
  | 'last_sign_in_method'
  // Mail.
  | 'mail_failed'
  // Clients and providers as stored.
  | 'client_metadata_invalid'
  | 'provider_unknown'
  | 'provider_conflict'
  | 'stale_version'
  | 'upstream_unavailable'
  | 'seal_failed'
  // The provider contract (`ProviderError` in providers/types.ts).
  | 'unavailable'
  | 'upstream_unreachable'
  | 'upstream_error'
  | 'response_invalid'
  | 'replayed'
  | 'transaction_invalid'
  // Upstream logout receivers.
  | 'upstream_logout_refused';

/** Values a sentence may name; each sentence uses those it needs and reads well without them. */
export interface SentenceParams {
  /** The provider's display name (the renderer fills it from the error's `alias` when absent). */
  provider?: string;
  /** What was not found (`client`, `provider`…) and its id. */
  what?: string;
  id?: string;
  /** The invalid fields, in order. */
  fields?: readonly string[];
  /** An email address an administrator sent. */
  email?: string;
}

/** What one code means at the HTTP boundary. */
export interface ErrorSpec {
  status: number;
  /** The problem `type` (`urn:realmgate:problem:<type>`) when it groups under an admin API type; default: the code. */
  type?: ErrorCode;
  /** The problem `title`: short and fixed per type. */
  title: string;
  /** Whether the sentence may be shown; false shows the `internal` sentence (default: status below 500). */
  expose?: boolean;
  /** The log level; default `warn` below 500 (without a stack), `error` (with the cause) from 500. */
  log?: 'warn' | 'error';
  /** What happened and what to do, for the person who sees it. */
  sentence: (params: SentenceParams) => string;
}

const START_AGAIN = 'Go back to the application and start again.';
const name = (p: SentenceParams) => p.provider ?? 'the identity provider';
/** The provider at the start of a sentence. */
const Name = (p: SentenceParams) => p.provider ?? 'The identity provider';

/** The one table of statuses and safe sentences. */
export const ERRORS = {
  bad_request: { status: 400, title: 'The request is invalid', sentence: () => `The request was not understood. ${START_AGAIN}` },
  invalid_request: {
    status: 400,
    title: 'The request is invalid',
    sentence: (p) => (p.fields?.length ? `Invalid field${p.fields.length > 1 ? 's' : ''}: ${p.fields.join(', ')}.` : 'The request is invalid; correct it and send it again.'),
  },
  malformed_json: { status: 400, title: 'The body is not valid JSON', sentence: () => 'What was sent could not be read (it is not valid JSON or form data). Correct it and send it again.' },
  unsupported_media_type: { status: 415, title: 'The body must be JSON', sentence: () => `What was sent to this page is in a form it does not read. ${START_AGAIN}` },
  payload_too_large: { status: 413, title: 'The body is too large', sentence: () => `What was sent to this page is larger than it accepts. ${START_AGAIN}` },
  unauthorized: { status: 401, title: 'Authentication required', sentence: () => 'Authentication is required: send a bearer access token with the admin scope.' },
  forbidden: { status: 403, title: 'Not allowed', sentence: () => 'You are not allowed to do that. Ask an administrator for access.' },
  not_found: { status: 404, title: 'Not found', sentence: (p) => (p.what ? `No ${p.what} "${p.id ?? ''}".` : 'This page does not exist.') },
  method_not_allowed: { status: 405, title: 'Method not allowed', sentence: () => 'That method is not allowed here; the Allow header lists those that are.' },
  conflict: { status: 409, title: 'Conflict with the current state', sentence: () => 'This conflicts with the current state; read it again and retry.' },
  precondition_failed: { status: 412, title: 'The resource changed since it was read', sentence: () => 'The resource changed since it was read. Read it again and retry.' },
  too_many_requests: { status: 429, title: 'Too many requests', sentence: () => 'Too many requests came from your network. Wait a minute and try again.' },
  internal: { status: 500, title: 'Something went wrong on our side', expose: false, sentence: () => 'Something went wrong on our side. Try again in a moment.' },

  interaction_expired: { status: 400, title: 'The sign-in expired', sentence: () => `Your sign-in took too long and has expired. ${START_AGAIN}` },
  csrf_invalid: { status: 403, title: 'The form expired', sentence: () => `This form was already used or has expired. ${START_AGAIN}` },
  provider_not_allowed: { status: 403, title: 'Provider not allowed', sentence: () => `This application does not allow that sign-in provider. ${START_AGAIN}` },
  account_not_provisioned: {
    status: 403,
    title: 'No account for this sign-in',
    sentence: (p) => `Your ${p.provider ? `${p.provider} ` : ''}sign-in is not linked to an account here, and new accounts are not created for it. Ask your administrator for access.`,
  },
  account_disabled: { status: 403, title: 'Account disabled', sentence: () => 'This account is disabled. Contact your administrator.' },
  account_signed_out: { status: 401, title: 'Signed out', sentence: () => 'You are not signed in any more. Open your account page again to sign in.' },
  account_login_invalid: { status: 400, title: 'The sign-in expired', sentence: () => 'This sign-in to your account page has expired. Open your account page again.' },

  email_taken: {
    status: 409,
    type: 'conflict',
    title: 'Conflict with the current state',
    sentence: (p) => `Another account with a password already uses ${p.email ?? 'that email'}. Use another email, or change that account.`,
  },
  identity_taken: {
    status: 409,
    type: 'conflict',
    title: 'Conflict with the current state',
    sentence: () => 'That sign-in already belongs to another account, so it was not added to this one. Unlink it there first, or sign in to that account to manage it.',
  },
  mail_failed: { status: 503, title: 'Mail could not be sent', expose: true, sentence: () => 'We could not send the email just now. Try again in a few minutes.' },
  last_sign_in_method: {
    status: 409,
    type: 'conflict',
    title: 'Conflict with the current state',
    sentence: () => 'This is the only way to sign in to this account (its last sign-in method), so it cannot be removed. Add another sign-in method first.',
  },

  client_metadata_invalid: { status: 400, type: 'invalid_request', title: 'The request is invalid', sentence: () => 'The client metadata is invalid; correct it and try again.' },
  provider_unknown: { status: 404, type: 'not_found', title: 'Not found', sentence: () => `This sign-in provider does not exist (any more). ${START_AGAIN}` },
  provider_conflict: { status: 409, type: 'conflict', title: 'Conflict with the current state', sentence: () => 'Another provider already claims that alias or domain; choose another one.' },
  stale_version: { status: 412, type: 'precondition_failed', title: 'The resource changed since it was read', sentence: () => 'The resource changed since it was read. Read it again and retry.' },
  upstream_unavailable: { status: 502, title: 'The upstream provider could not be used', expose: true, sentence: (p) => `${Name(p)} could not be used. Check its settings and try again.` },
  seal_failed: { status: 500, title: 'Something went wrong on our side', expose: false, sentence: () => 'Something went wrong on our side. Try again in a moment.' },

  unavailable: {
    status: 503,
    title: 'The provider is not available',
    expose: true,
    sentence: (p) => `Sign-in with ${name(p)} is not available right now. Try again later, or go back to the application and choose another way to sign in.`,
  },
  upstream_unreachable: {
    status: 504,
    title: 'The provider did not answer',
    expose: true,
    sentence: (p) => `${Name(p)} did not answer in time, so we could not complete your sign-in. Try again in a moment.`,
  },
  upstream_error: {
    status: 502,
    title: 'The provider refused the sign-in',
    expose: true,
    // The upstream said no (or failed): its answer, not our fault.
    log: 'warn',
    sentence: (p) => `${Name(p)} did not complete your sign-in. Go back to the application and try again.`,
  },
  response_invalid: {
    status: 502,
    title: 'The provider\'s answer was refused',
    expose: true,
    // Refused input (a forged or broken SAML response, a bad ID token): warn, never error, so it cannot flood the error log.
    log: 'warn',
    sentence: (p) => `We could not verify the answer from ${name(p)}, so you are not signed in. Go back to the application and try again.`,
  },
  replayed: { status: 400, title: 'The answer was already used', sentence: (p) => `This sign-in answer from ${name(p)} was already used. ${START_AGAIN}` },
  transaction_invalid: { status: 400, title: 'The sign-in expired', sentence: () => `This sign-in has expired or was already completed. ${START_AGAIN}` },

  upstream_logout_refused: {
    status: 400,
    title: 'The sign-out request was refused',
    sentence: (p) => `We could not verify the sign-out request from ${name(p)}, so nothing was changed. If you meant to sign out, sign out from the application.`,
  },
} as const satisfies Record<ErrorCode, ErrorSpec>;

/** The table entry of `code`. */
export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERRORS[code];
}

/** True when `value` is one of the codes in the table. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}
