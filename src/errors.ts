/**
 * Realmgate's one error type. Every failure that can reach an HTTP answer is a `RealmgateError`
 * with a stable `code`; its status, problem type, log level and safe sentence come from the one
 * table in `errors/codes.ts`, and `errors/handler.ts` turns it into a page or a problem document.
 * Start-up and command-line failures that never reach HTTP (`ConfigError`, `UsageError`,
 * `DatabaseLockedError`) stay plain errors next to the code that throws them.
 */
import crypto from 'node:crypto';
import { ERRORS, type ErrorCode, type SentenceParams } from './errors/codes.ts';

export type { ErrorCode, SentenceParams } from './errors/codes.ts';

const REF_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';

/** A short reference (`7GQ2-K9`) shown to the user and logged with the real reason. */
export function newReference(): string {
  const bytes = crypto.randomBytes(6);
  const chars = [...bytes].map((b) => REF_ALPHABET[b % REF_ALPHABET.length]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

/** One invalid field of a request: `field` is a dotted path into the JSON body or a query parameter name. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** What a RealmgateError carries besides its code; all optional. */
export interface RealmgateErrorOptions {
  /** The internal reason, for the log only (it becomes `message`). */
  detail?: string | undefined;
  /** The provider the failure is about; the renderer names it by display name. */
  alias?: string | undefined;
  /** Values the code's sentence names. */
  params?: SentenceParams;
  /**
   * A more specific safe sentence than the table's, for an administrator (an admin API problem
   * naming the resource or the rule broken). Browser pages take theirs from the table.
   */
  safeMessage?: string | undefined;
  /** Every invalid field (the admin API's `errors` member). */
  errors?: FieldProblem[] | undefined;
  /** Response headers the answer needs (`WWW-Authenticate`, `Allow`, `ETag`, `Retry-After`). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/**
 * A failure with a stable `code`. `status` and `expose` come from the code's table entry;
 * `message` (and `cause`) are for the log only; what a person sees is `safeSentence(error)`.
 */
export class RealmgateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Whether the safe sentence may be shown; when false, the `internal` sentence is. */
  readonly expose: boolean;
  readonly alias: string | undefined;
  readonly params: SentenceParams;
  readonly errors: FieldProblem[] | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly #safeMessage: string | undefined;

  constructor(code: ErrorCode, options: RealmgateErrorOptions = {}) {
    super(options.detail ?? options.safeMessage ?? code, { cause: options.cause });
    this.name = 'RealmgateError';
    const spec = ERRORS[code];
    this.code = code;
    this.status = spec.status;
    this.expose = 'expose' in spec ? spec.expose : spec.status < 500;
    this.alias = options.alias;
    this.params = options.params ?? {};
    this.errors = options.errors;
    this.headers = options.headers ?? {};
    this.#safeMessage = options.safeMessage;
  }

  /** The sentence for this failure; `displayName` names the provider of `alias` when the params do not. */
  safeSentence(displayName?: (alias: string) => string | undefined): string {
    if (!this.expose) return ERRORS.internal.sentence();
    if (this.#safeMessage) return this.#safeMessage;
    const provider = this.params.provider ?? (this.alias ? (displayName?.(this.alias) ?? this.alias) : undefined);
    return ERRORS[this.code].sentence({ ...this.params, ...(provider ? { provider } : {}) });
  }
}

/** True when `error` is a RealmgateError (with `code`, when given). */
export function isRealmgateError(error: unknown, code?: ErrorCode): error is RealmgateError {
  return error instanceof RealmgateError && (code === undefined || error.code === code);
}
