/**
 * Errors thrown by the libraries under the routes, recognised once: body-parser's refusals (too
 * large, too many fields, not parseable, an unsupported charset) and express's undecodable path
 * parameters are the sender's fault and become their 4xx RealmgateError; anything else that is
 * not a RealmgateError is ours and becomes `internal`, the original kept as `cause`.
 */
import { RealmgateError, type ErrorCode } from '../errors.ts';

/** What body-parser (express.urlencoded, express.json) attaches to the errors it throws. */
interface BodyParserError {
  type: string;
  limit?: number;
  length?: number;
}

/** Realmgate's code for each body-parser error type. */
const BODY_ERRORS: Readonly<Record<string, ErrorCode>> = {
  'entity.too.large': 'payload_too_large',
  'parameters.too.many': 'payload_too_large',
  'entity.parse.failed': 'malformed_json',
  'entity.verify.failed': 'bad_request',
  'request.aborted': 'bad_request',
  'request.size.invalid': 'bad_request',
  'charset.unsupported': 'unsupported_media_type',
  'encoding.unsupported': 'unsupported_media_type',
};

/** True for an error thrown by body-parser about the request body. */
export function isBodyParserError(error: unknown): error is Error & BodyParserError {
  if (!(error instanceof Error)) return false;
  const type = (error as unknown as Partial<BodyParserError>).type;
  return typeof type === 'string' && Object.hasOwn(BODY_ERRORS, type);
}

/** The fields worth logging about a library error (body-parser's type and sizes), without its stack. */
export function knownErrorFields(error: unknown): Record<string, unknown> {
  if (!isBodyParserError(error)) return {};
  return { type: error.type, limit: error.limit, length: error.length };
}

/** Any thrown value as a RealmgateError: itself, a recognised library refusal, or `internal` with it as `cause`. */
export function toRealmgateError(error: unknown): RealmgateError {
  if (error instanceof RealmgateError) return error;
  if (isBodyParserError(error)) {
    return new RealmgateError(BODY_ERRORS[error.type]!, { detail: `request body refused: ${error.type}: ${error.message}`, cause: error });
  }
  if (error instanceof URIError && (error as { status?: number }).status === 400) {
    // express could not decode a path parameter (`%E0%A4%A`): the client's fault, not ours.
    return new RealmgateError('invalid_request', {
      detail: `undecodable path: ${error.message}`,
      safeMessage: 'The URL path is not valid percent-encoding.',
      errors: [{ field: '(path)', message: 'is not valid percent-encoding' }],
      cause: error,
    });
  }
  return new RealmgateError('internal', { detail: error instanceof Error ? error.message : String(error), cause: error });
}
