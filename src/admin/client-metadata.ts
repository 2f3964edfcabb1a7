import { z } from 'zod';
import type { StoredClient } from '../store/clients.ts';
import type { TokenEngine } from '../token-server/engine.ts';
import { isJsonObject } from './merge-patch.ts';
import { ALIAS_PATTERN } from './provider-json.ts';
import { PROFILE_CLAIM_NAMES } from '../interaction/steps/profile-claims.ts';
import { type FieldProblem, zodProblems } from './problems.ts';

/** What a client_id may look like: it appears in admin URLs, so URL-safe characters only. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;

/** Read-only fields of the client representation; ignored on write so a read can be sent back. */
const READ_ONLY = ['version', 'client_secret_set'] as const;

/**
 * The admin API's own checks on a client body, before the engine's: identifiers, the write-only
 * secret and Realmgate's custom metadata. Every other field goes to oidc-provider's rules.
 */
const clientBody = z
  .object({
    client_id: z.string({ error: 'is required' }).regex(CLIENT_ID_PATTERN, 'must be 1 to 128 URL-safe characters (A-Z a-z 0-9 . _ ~ -)'),
    client_secret: z.string({ error: 'must be a string or null' }).min(16, 'must be at least 16 characters').max(512, 'must be at most 512 characters').nullable().optional(),
    allowed_providers: z.array(z.string().regex(ALIAS_PATTERN, 'must be a provider alias'), { error: 'must be an array of provider aliases' }).optional(),
    local_login: z.boolean({ error: 'must be true or false' }).optional(),
    require_consent: z.boolean({ error: 'must be true or false' }).optional(),
    claims_in_id_token: z.boolean({ error: 'must be true or false' }).optional(),
    terms_uri: z
      .url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL of the terms of service' })
      .max(2000, 'must be at most 2000 characters')
      .optional(),
    terms_version: z.string({ error: 'must be a string, e.g. "2026-12"' }).trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters').optional(),
    required_claims: z
      .array(z.enum(PROFILE_CLAIM_NAMES, { error: `must be one of ${PROFILE_CLAIM_NAMES.join(', ')}` }), { error: `must be an array of claim names (${PROFILE_CLAIM_NAMES.join(', ')})` })
      .refine((names) => new Set(names).size === names.length, 'must not name a claim twice')
      .optional(),
    registration: z.boolean({ error: 'must be true or false' }).optional(),
    mfa: z.enum(['off', 'if_enrolled', 'required'], { error: 'must be "off", "if_enrolled" or "required"' }).optional(),
  })
  .catchall(z.unknown())
  .superRefine((client, ctx) => {
    // The terms step needs both: the page links the document, the account records the version.
    if ((client.terms_uri === undefined) !== (client.terms_version === undefined)) {
      const missing = client.terms_uri === undefined ? 'terms_uri' : 'terms_version';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'is required together with ' + (missing === 'terms_uri' ? 'terms_version' : 'terms_uri') });
    }
  });

/**
 * A client body after the admin API's checks: the metadata without the fields that failed them,
 * the secret change (undefined keeps, null removes) and the problems found.
 */
export interface ParsedClientBody {
  metadata: Record<string, unknown>;
  secret: string | null | undefined;
  problems: FieldProblem[];
}

/** Parses a client body, listing every field the admin API's own checks refuse. */
export function parseClientBody(body: unknown): ParsedClientBody {
  if (!isJsonObject(body)) return { metadata: {}, secret: undefined, problems: [{ field: '(body)', message: 'must be a JSON object' }] };
  const input: Record<string, unknown> = { ...body };
  for (const key of READ_ONLY) delete input[key];
  const parsed = clientBody.safeParse(input);
  const problems = parsed.success ? [] : zodProblems(parsed.error);
  const invalid = new Set(problems.map((p) => p.field.split('.')[0]));
  const { client_secret: secret, ...metadata } = Object.fromEntries(Object.entries(input).filter(([key]) => !invalid.has(key)));
  return { metadata, secret: secret as string | null | undefined, problems };
}

/** The client representation: its metadata, `client_secret_set` and `version`; never the secret. */
export function clientJson(client: StoredClient): Record<string, unknown> {
  return { ...client.metadata, client_secret_set: client.secretSet, version: client.version };
}

/** The parts of oidc-provider's Client model the checks use (`needsSecret` and `Schema` are untyped upstream). */
interface EngineClientModel {
  validate(metadata: Record<string, unknown>): Promise<void>;
  needsSecret(metadata: Record<string, unknown>): boolean;
  Schema: new (metadata: Record<string, unknown>) => Record<string, unknown>;
}

const engineClient = (engine: TokenEngine) => engine.provider.Client as unknown as EngineClientModel;

/** True when oidc-provider requires a secret for this metadata (a secret-based auth method, HMAC algorithms). */
export function clientNeedsSecret(engine: TokenEngine, metadata: Record<string, unknown>): boolean {
  return engineClient(engine).needsSecret({ token_endpoint_auth_method: 'client_secret_basic', ...metadata });
}

/** Valid stand-ins for the fields oidc-provider may require, used only to keep validating the other fields. */
const PLACEHOLDERS: Record<string, unknown> = {
  redirect_uris: ['https://client.invalid/callback'],
  client_secret: 'placeholder-secret-placeholder-secret',
  jwks_uri: 'https://client.invalid/jwks',
  sector_identifier_uri: 'https://client.invalid/sector',
};

/** The metadata field an oidc-provider validation message is about, when it names one. */
function fieldOf(description: string): string | undefined {
  const invalid = /^invalid ([a-z_]+) value/.exec(description);
  if (invalid) return invalid[1];
  const first = /^([a-z][a-z0-9_]*)\b/.exec(description)?.[1];
  if (first === undefined) return undefined;
  return first.includes('_') || ['scope', 'contacts', 'jwks'].includes(first) ? first : undefined;
}

/**
 * Runs oidc-provider's own client validation and names every invalid field: the engine stops at
 * the first problem, so each named field is recorded and dropped and the rest validated again.
 * Then fields the engine does not recognise at all are reported too.
 */
export async function engineClientProblems(engine: TokenEngine, metadata: Record<string, unknown>, secret: string | null): Promise<FieldProblem[]> {
  const Client = engineClient(engine);
  const remaining: Record<string, unknown> = { ...metadata, ...(secret ? { client_secret: secret } : {}) };
  const problems: FieldProblem[] = [];
  for (let round = 0; round <= Object.keys(metadata).length + Object.keys(PLACEHOLDERS).length + 1; round++) {
    try {
      await Client.validate(remaining);
    } catch (cause) {
      const description = (cause as { error_description?: string }).error_description ?? (cause as Error).message;
      const field = fieldOf(description);
      const message = field && description.startsWith(`${field} `) ? description.slice(field.length + 1) : description;
      const reported = field !== undefined && problems.some((p) => p.field === field);
      if (!reported) problems.push({ field: field ?? '(body)', message });
      if (field !== undefined && field in remaining && !reported) {
        delete remaining[field];
        continue;
      }
      // A required field is missing or was dropped: stand in a valid value to validate the rest.
      const placeholder = field === undefined ? undefined : PLACEHOLDERS[field];
      if (placeholder === undefined || remaining[field!] === placeholder) return problems;
      remaining[field!] = placeholder;
      continue;
    }
    const recognised = new Client.Schema(remaining);
    for (const key of Object.keys(remaining)) {
      if (key !== 'client_secret' && !(key in recognised)) problems.push({ field: key, message: 'is not a recognised client metadata field' });
    }
    return problems;
  }
  return problems;
}
