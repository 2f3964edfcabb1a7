import { z } from 'zod';
import type { Problem } from '../types.ts';
import { keyMatchesCertificate, toCertificatePem } from './certificates.ts';
import { parseIdpMetadata } from './metadata.ts';

/** The NameID formats a provider may ask for, by the short names settings use. */
export const NAME_ID_FORMATS = {
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
} as const;

/** A NameID format by short name. */
export type NameIdFormat = keyof typeof NAME_ID_FORMATS;

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const nameIdFormat = z
  .string()
  .transform((v, ctx) => {
    const short = (Object.keys(NAME_ID_FORMATS) as NameIdFormat[]).find((k) => k === v || NAME_ID_FORMATS[k] === v);
    if (!short) {
      ctx.addIssue({ code: 'custom', message: `must be one of ${Object.keys(NAME_ID_FORMATS).join(', ')} (or its URN)` });
      return z.NEVER;
    }
    return short;
  });

/** A `saml` provider's settings as stored; defaults sit next to each field. */
const settingsSchema = z.strictObject({
  /** Where to fetch the IdP's metadata; fetched when the provider is opened and on refresh. */
  metadata_url: httpUrl.optional(),
  /** The IdP's metadata document, pasted in. */
  metadata_xml: z.string().min(1, 'must not be empty').optional(),
  /** The IdP's entity ID: required for entered fields; with metadata, picks one entity from an aggregate. */
  idp_entity_id: z.string().min(1, 'must not be empty').optional(),
  /** The IdP's single sign-on endpoint (entered fields only). */
  sso_url: httpUrl.optional(),
  /** The IdP's single logout endpoint (entered fields only). */
  slo_url: httpUrl.optional(),
  /** The IdP's signing certificates, PEM or base64 (entered fields only); several during a rollover. */
  idp_certificates: z.array(z.string(), { error: 'must be a list of certificates' }).min(1, 'must list at least one certificate').optional(),
  /** How the AuthnRequest reaches the IdP: `redirect` (HTTP-Redirect) or `post` (HTTP-POST). */
  binding: z.enum(['redirect', 'post'], { error: 'must be redirect or post' }).default('redirect'),
  /** Every assertion must carry a valid IdP signature. */
  want_assertions_signed: z.boolean({ error: 'must be true or false' }).default(true),
  /**
   * Accept SHA-1 in the IdP's signatures (RSA-SHA1 and other *-sha1 signature methods, SHA-1
   * digests). Off: such a response is refused before its signature is checked, as SHA-1 collisions
   * are practical. Only for a legacy IdP that cannot sign with SHA-256.
   */
  allow_sha1: z.boolean({ error: 'must be true or false' }).default(false).describe('Accept SHA-1 signature methods and digests from a legacy IdP (refused by default).'),
  /** The whole Response must carry a valid IdP signature. */
  want_response_signed: z.boolean({ error: 'must be true or false' }).default(false),
  /** Accept unsolicited (IdP-initiated) responses. Off: only answers to our own AuthnRequests count. */
  allow_idp_initiated: z.boolean({ error: 'must be true or false' }).default(false),
  /** The application (client_id, with an `initiate_login_uri`) an IdP-initiated login is sent to; required with `allow_idp_initiated`. */
  idp_initiated_client_id: z.string().min(1, 'must not be empty').optional(),
  /** Tolerance for clock differences with the IdP when checking validity windows. */
  clock_skew_seconds: z.int({ error: 'must be a whole number' }).min(0, 'must not be negative').max(600, 'must be at most 600').default(60),
  /** The NameID format asked for. `unspecified` lets the IdP choose. */
  name_id_format: nameIdFormat.default('unspecified'),
  /** An attribute (Name or FriendlyName) whose value is the stable subject instead of the NameID; needed for transient NameIDs. */
  subject_attribute: z.string().min(1, 'must not be empty').optional(),
  /** Send a signed LogoutRequest to the IdP's single logout endpoint when the user signs out of an application. */
  upstream_logout: z.boolean({ error: 'must be true or false' }).default(true),
  /** AuthnContextClassRef values to request (with comparison `exact`); absent asks for none. */
  requested_authn_context: z.array(z.string().min(1, 'must not be empty')).min(1, 'must not be empty').optional(),
  /** Our entity ID at this IdP; defaults to the SP metadata URL `<issuer>/federation/<alias>/saml/metadata`. */
  sp_entity_id: z.string().min(1, 'must not be empty').optional(),
  /** Our signing and encryption certificate (PEM), generated with the provider; its key is the `sp_private_key` secret. */
  sp_certificate: z.string({ error: 'is required (created with the provider)' }),
  /** How often a `metadata_url` is fetched again. */
  metadata_refresh_seconds: z.int({ error: 'must be a whole number' }).min(300, 'must be at least 300').max(604_800, 'must be at most 604800').default(86_400),
});

/** The JSON Schema of a `saml` provider's settings as written (for the OpenAPI document). */
export function samlSettingsJsonSchema(): Record<string, unknown> {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(settingsSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return schema;
}

/** A `saml` provider's settings with defaults applied. */
export type SamlSettings = z.output<typeof settingsSchema>;

/** Secret names of the `saml` kind. */
export const SAML_SECRET_NAMES = ['sp_private_key'] as const;

/** What an administrator who still sends SAML's old `trust_email` setting is told. */
const REPLACED_TRUST_EMAIL = 'was replaced by the provider\'s top-level email_trust ("any" for true, "none" for false)';

/**
 * Validates settings and secrets without network access and lists every problem at once.
 * Returns the parsed settings too when there is no problem.
 */
export function checkSamlSettings(settings: unknown, secrets: Record<string, string>): { problems: Problem[]; settings?: SamlSettings } {
  const problems: Problem[] = [];
  const parsed = settingsSchema.safeParse(settings ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const message = key === 'trust_email' && !issue.path.length ? REPLACED_TRUST_EMAIL : 'is not a saml setting';
          problems.push({ field: `settings.${[...issue.path, key].join('.')}`, message });
        }
      } else {
        problems.push({ field: ['settings', ...issue.path].join('.'), message: issue.message });
      }
    }
  }
  const raw = (typeof settings === 'object' && settings !== null ? settings : {}) as Record<string, unknown>;
  problems.push(...checkIdpSource(raw), ...checkSpKeys(raw, secrets));
  for (const name of Object.keys(secrets)) {
    if (!(SAML_SECRET_NAMES as readonly string[]).includes(name)) problems.push({ field: `secrets.${name}`, message: 'is not a saml secret' });
  }
  if (parsed.success) {
    const s = parsed.data;
    if (!s.want_assertions_signed && !s.want_response_signed) {
      problems.push({ field: 'settings.want_assertions_signed', message: 'want_assertions_signed or want_response_signed must be true' });
    }
    if (s.allow_idp_initiated && !s.idp_initiated_client_id) {
      problems.push({ field: 'settings.idp_initiated_client_id', message: 'is required with allow_idp_initiated: the application IdP-initiated logins go to' });
    }
    if (s.name_id_format === 'transient' && !s.subject_attribute) {
      problems.push({ field: 'settings.subject_attribute', message: 'is required with transient NameIDs, which change at every login and cannot identify a returning user' });
    }
  }
  return problems.length || !parsed.success ? { problems } : { problems, settings: parsed.data };
}

/** Exactly one source of IdP configuration: a metadata URL, metadata XML, or entered fields. */
function checkIdpSource(raw: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const fromMetadata = ['metadata_url', 'metadata_xml'].filter((k) => raw[k] !== undefined);
  const entered = ['sso_url', 'slo_url', 'idp_certificates'].filter((k) => raw[k] !== undefined);
  if (fromMetadata.length > 1) {
    problems.push({ field: 'settings.metadata_xml', message: 'give metadata_url or metadata_xml, not both' });
  }
  if (fromMetadata.length) {
    for (const k of entered) problems.push({ field: `settings.${k}`, message: `comes from the metadata; remove it or remove ${fromMetadata[0]}` });
    if (typeof raw.metadata_xml === 'string' && raw.metadata_xml) {
      try {
        parseIdpMetadata(raw.metadata_xml, typeof raw.idp_entity_id === 'string' ? raw.idp_entity_id : undefined);
      } catch (error) {
        problems.push({ field: 'settings.metadata_xml', message: (error as Error).message });
      }
    }
    return problems;
  }
  for (const k of ['idp_entity_id', 'sso_url', 'idp_certificates']) {
    if (raw[k] === undefined) problems.push({ field: `settings.${k}`, message: 'is required unless metadata_url or metadata_xml is given' });
  }
  if (Array.isArray(raw.idp_certificates)) {
    raw.idp_certificates.forEach((cert, i) => {
      if (typeof cert !== 'string') return;
      try {
        toCertificatePem(cert);
      } catch {
        problems.push({ field: `settings.idp_certificates.${i}`, message: 'is not an X.509 certificate (PEM or base64)' });
      }
    });
  }
  return problems;
}

/** The SP certificate parses and the `sp_private_key` secret belongs to it. */
function checkSpKeys(raw: Record<string, unknown>, secrets: Record<string, string>): Problem[] {
  const problems: Problem[] = [];
  const key = secrets.sp_private_key;
  if (!key) problems.push({ field: 'secrets.sp_private_key', message: 'is required (created with the provider)' });
  if (typeof raw.sp_certificate !== 'string') return problems;
  let certificate: string;
  try {
    certificate = toCertificatePem(raw.sp_certificate);
  } catch {
    problems.push({ field: 'settings.sp_certificate', message: 'is not an X.509 certificate (PEM or base64)' });
    return problems;
  }
  if (!key) return problems;
  try {
    if (!keyMatchesCertificate(key, certificate)) problems.push({ field: 'secrets.sp_private_key', message: 'does not belong to sp_certificate' });
  } catch {
    problems.push({ field: 'secrets.sp_private_key', message: 'is not a PEM private key' });
  }
  return problems;
}
