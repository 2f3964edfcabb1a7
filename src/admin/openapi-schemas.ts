import { providerTypes } from '../../providers/index.ts';
import { presetsJsonSchema } from '../../providers/oauth2/presets.ts';
import { oauth2SettingsJsonSchema } from '../../providers/oauth2/settings.ts';
import { samlSettingsJsonSchema } from '../../providers/saml/settings.ts';
import { AUDITED_RESOURCES } from './audit-routes.ts';
import { CLIENT_ID_PATTERN } from './client-metadata.ts';
import { PROFILE_CLAIM_NAMES } from '../interaction/steps/profile-claims.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './user-json.ts';
import { ALIAS_PATTERN, EMAIL_TRUST_VALUES, LINKING_VALUES, MAX_DOMAINS_PER_PROVIDER, PROVISIONING_VALUES } from './provider-json.ts';

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses it). */
export type JsonSchema = { [keyword: string]: unknown };

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const str = (description?: string): JsonSchema => ({ type: 'string', ...(description ? { description } : {}) });
const time: JsonSchema = { type: 'string', format: 'date-time' };
const nullable = (schema: JsonSchema): JsonSchema => ({ oneOf: [schema, { type: 'null' }] });
const strings: JsonSchema = { type: 'array', items: { type: 'string' } };
const userName: JsonSchema = { type: 'string', minLength: 1, maxLength: 200 };

/** A list page of `item`: the items and the cursor of the next page. */
export function pageOf(item: string): JsonSchema {
  return {
    type: 'object',
    required: ['items', 'next_cursor'],
    properties: {
      items: { type: 'array', items: ref(item) },
      next_cursor: nullable(str('Pass as `cursor` to get the next page; null on the last page.')),
    },
  };
}

const providerFields: Record<string, JsonSchema> = {
  alias: { type: 'string', pattern: ALIAS_PATTERN.source, description: 'URL-safe and permanent: it is in the callback URLs.' },
  kind: { type: 'string', enum: Object.keys(providerTypes), description: 'Upstream protocol; permanent.' },
  display_name: { type: 'string', minLength: 1, maxLength: 200 },
  enabled: { type: 'boolean', default: true },
  domains: {
    type: 'array',
    items: { type: 'string', format: 'hostname', maxLength: 253 },
    maxItems: MAX_DOMAINS_PER_PROVIDER,
    uniqueItems: true,
    description: `Email domains this provider owns for home-realm discovery (at most ${MAX_DOMAINS_PER_PROVIDER}); a domain belongs to one provider.`,
  },
  settings: { type: 'object', additionalProperties: true, description: 'Kind-specific settings, validated by the kind (`issuer`, `client_id`, `scopes`… for oidc; for saml see the `SamlSettings` schema; for oauth2 the `OAuth2Settings` schema and its `OAuth2Presets`).' },
  claim_mappings: { type: 'object', additionalProperties: { type: 'string' } },
  require_local_mfa: {
    type: 'boolean',
    default: false,
    description: 'After a sign-in through this provider, the client\'s `mfa` policy also asks for a local second factor (an authenticator app or a passkey). False: the upstream\'s own authentication is trusted and no local factor is asked.',
  },
  email_trust: {
    type: 'string',
    enum: [...EMAIL_TRUST_VALUES],
    default: 'domains',
    description: 'Which upstream emails count as verified: `domains` only those in this provider\'s `domains`, `any` every address the upstream says it verified, `none` none. Tokens release `email_verified: true` only for such an address.',
  },
  linking: {
    type: 'string',
    enum: [...LINKING_VALUES],
    default: 'confirm',
    description: 'When an account with the identity\'s email exists: `confirm` asks the person to sign in to it first, `trusted_email` links at once when the email is trusted, `none` creates a separate account. An untrusted email never links by itself.',
  },
  provisioning: {
    type: 'string',
    enum: [...PROVISIONING_VALUES],
    default: 'auto',
    description: '`auto` creates an account on first sign-in; `existing_only` lets only identities already linked, or linkable under `linking`, sign in.',
  },
};

/** The component schemas of the admin API. */
export const schemas: Record<string, JsonSchema> = {
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem details; `errors` lists every invalid field, `reference` names the log line with the reason.',
    required: ['type', 'title', 'status', 'detail'],
    properties: {
      type: str('`urn:realmgate:problem:<code>`'),
      title: str(),
      status: { type: 'integer' },
      detail: str(),
      errors: { type: 'array', items: { type: 'object', required: ['field', 'message'], properties: { field: str('Dotted path, e.g. `settings.issuer`.'), message: str() } } },
      reference: str('The reference (`7GQ2-K9`) of the log line with the reason.'),
    },
  },
  Provider: {
    type: 'object',
    required: [...Object.keys(providerFields), 'version', 'secrets_set', 'status'],
    properties: {
      ...providerFields,
      version: { type: 'integer', readOnly: true, description: 'Bumped by every change; the ETag is `"<version>"`.' },
      secrets_set: { ...strings, readOnly: true, description: 'Names of the secrets that are set; their values are never returned.' },
      status: {
        type: 'object',
        readOnly: true,
        additionalProperties: true,
        description: 'Operational state: `refresh` (last refresh of a metadata URL: `at`, `ok`, `error`, `code`, `changed`, `next_at`) and `certificates` (`use`, `subject`, `fingerprint`, `not_before`, `not_after` of each certificate the provider depends on).',
        properties: {
          refresh: {
            type: 'object',
            properties: { at: time, ok: { type: 'boolean' }, error: str(), code: str(), digest: str(), changed: { type: 'boolean' }, next_at: time },
          },
          certificates: {
            type: 'array',
            items: { type: 'object', properties: { use: str('`idp-signing` or `sp`.'), subject: str(), fingerprint: str('SHA-256, colon-separated hex.'), not_before: time, not_after: time } },
          },
        },
      },
    },
  },
  ProviderWrite: {
    type: 'object',
    required: ['alias', 'kind', 'display_name'],
    description: 'Create or replace body. `version` and `secrets_set` are read-only and ignored. On replace, `alias` and `kind` may be omitted and must not change.',
    properties: {
      ...providerFields,
      secrets: {
        type: 'object',
        writeOnly: true,
        additionalProperties: { oneOf: [{ type: 'string' }, { type: 'null' }] },
        description: 'Write-only. Named secrets are set; null removes one; secrets not named are kept.',
      },
    },
  },
  ProviderPatch: {
    type: 'object',
    description: 'JSON Merge Patch (RFC 7396) of ProviderWrite: objects merge key by key, null removes a key, arrays replace. `secrets` sets or (null) removes the named secrets.',
    additionalProperties: true,
  },
  SamlSettings: { description: 'The `settings` of a `saml` provider, with their defaults.', ...samlSettingsJsonSchema() },
  OAuth2Settings: { description: 'The `settings` of an `oauth2` provider: generic endpoints and JSON pointers, or a `preset` with its few own settings (generic ones beside it win). Secrets: `client_secret` (`private_key` for apple).', ...oauth2SettingsJsonSchema() },
  OAuth2Presets: presetsJsonSchema(),
  ProviderTestResult: {
    type: 'object',
    required: ['ok', 'checks'],
    properties: {
      ok: { type: 'boolean' },
      checks: {
        type: 'array',
        description: '`kind`, `settings`, `open` (oidc: discovery and JWKS; saml: metadata and certificates), then what a login needs of the opened upstream (oidc: `id_token_signing_alg`, `token_endpoint_auth_method`; oauth2: `identity_source`), then network probes needing no user (oauth2: `authorization_endpoint`, `token_endpoint` (a made-up code: are the client credentials accepted?), `userinfo_endpoint`, `emails_endpoint`, `jwks_uri`) and `not_checked`, naming what only a real sign-in checks.',
        items: { type: 'object', required: ['name', 'ok'], properties: { name: str(), ok: { type: 'boolean' }, detail: str() } },
      },
    },
  },
  Client: {
    type: 'object',
    required: ['client_id', 'version', 'client_secret_set'],
    description: 'OpenID Connect client metadata as oidc-provider validates it, plus Realmgate fields.',
    additionalProperties: true,
    properties: {
      client_id: { type: 'string', pattern: CLIENT_ID_PATTERN.source },
      client_name: str(),
      redirect_uris: strings,
      post_logout_redirect_uris: strings,
      grant_types: strings,
      response_types: strings,
      token_endpoint_auth_method: str('Default `client_secret_basic`; `none` for public clients.'),
      scope: str(),
      backchannel_logout_uri: str('Where Realmgate posts a logout token when a session of this client ends (through the logout outbox).'),
      backchannel_logout_session_required: { type: 'boolean', description: 'Logout tokens carry `sid`.' },
      frontchannel_logout_uri: str('Loaded in a frame of the front-channel logout page when an upstream ends the session.'),
      frontchannel_logout_session_required: { type: 'boolean', description: 'The front-channel logout URI gets `iss` and `sid`.' },
      allowed_providers: { ...strings, description: 'Aliases this client may log in with, in the order its login page shows them; absent means all (by alias).' },
      local_login: { type: 'boolean', description: 'Offer the local password form (default true).' },
      require_consent: { type: 'boolean' },
      claims_in_id_token: {
        type: 'boolean',
        default: false,
        description: 'The ID token carries the claims of the granted scopes (`email`, `name`…) too, not only `sub`, `idp` and `amr`; userinfo serves them either way.',
      },
      terms_uri: str('Terms of service every login to this client must accept (with `terms_version`); the page links this URL.'),
      terms_version: { type: 'string', minLength: 1, maxLength: 64, description: 'Version of the terms; a person who has not accepted this version is asked once.' },
      required_claims: {
        type: 'array',
        uniqueItems: true,
        items: { type: 'string', enum: [...PROFILE_CLAIM_NAMES] },
        description: 'Claims every account signing in to this client must have; a person whose account lacks one is asked for it once.',
      },
      mfa: {
        type: 'string',
        enum: ['off', 'if_enrolled', 'required'],
        default: 'if_enrolled',
        description: 'When a login to this client asks for a second factor after a password (or after a federated sign-in whose provider has `require_local_mfa`): `off` never, `if_enrolled` when the account has a factor, `required` always (an account without one enrols an authenticator app during the login). `acr_values=mfa` asks for it on one login.',
      },
      registration: { type: 'boolean', default: false, description: 'The login page offers to create a local account (email verified by a mailed link).' },
      client_secret: {
        type: 'string',
        description: 'Write-only. Returned only in the response of the write that generated it (a confidential client written without one).',
      },
      client_secret_set: { type: 'boolean', readOnly: true },
      version: { type: 'integer', readOnly: true },
    },
  },
  User: {
    type: 'object',
    required: ['id', 'email', 'email_verified', 'disabled', 'password_set', 'created_at'],
    properties: {
      id: { type: 'string', format: 'uuid', description: 'The stable `sub` of the account.' },
      email: nullable(str()),
      email_verified: { type: 'boolean' },
      name: nullable(str()),
      given_name: nullable(str()),
      family_name: nullable(str()),
      disabled: { type: 'boolean' },
      password_set: { type: 'boolean' },
      created_at: time,
      last_login_at: nullable(time),
    },
  },
  UserDetail: {
    allOf: [
      ref('User'),
      {
        type: 'object',
        required: ['claims', 'identities', 'terms_accepted', 'factors', 'recovery_codes_left'],
        properties: {
          claims: { type: 'object', additionalProperties: true },
          identities: { type: 'array', items: ref('Identity') },
          terms_accepted: { type: 'array', items: ref('TermsAcceptance'), description: 'The terms of service versions this person accepted, newest first.' },
          factors: { type: 'array', items: ref('Factor'), description: 'Confirmed second factors (authenticator apps and passkeys), oldest first; never their secrets or key material.' },
          recovery_codes_left: { type: 'integer', minimum: 0, description: 'Unused recovery codes (each signs in once instead of a code).' },
        },
      },
    ],
  },
  Factor: {
    type: 'object',
    required: ['id', 'kind', 'label', 'created_at', 'confirmed_at', 'last_used_at'],
    properties: {
      id: { type: 'string', format: 'uuid' },
      kind: { type: 'string', enum: ['totp', 'webauthn'], description: '`totp`: an authenticator app; `webauthn`: a passkey or security key.' },
      label: str(),
      created_at: time,
      confirmed_at: nullable(time),
      last_used_at: nullable(time),
      transports: { type: 'array', items: str(), description: 'Passkeys only: how the browser reaches the authenticator (`internal`, `usb`, `hybrid`…).' },
      backed_up: { type: 'boolean', description: 'Passkeys only: the credential is backed up (synced); its sign-ins carry `amr` `swk`, otherwise `hwk`.' },
      device_type: { type: 'string', enum: ['singleDevice', 'multiDevice'], description: 'Passkeys only: bound to one device, or able to sync.' },
    },
  },
  TermsAcceptance: {
    type: 'object',
    required: ['terms_uri', 'terms_version', 'client_id', 'accepted_at'],
    properties: { terms_uri: str(), terms_version: str(), client_id: str('The client whose login asked for it.'), accepted_at: time },
  },
  Identity: {
    type: 'object',
    required: ['provider', 'subject', 'email', 'created_at', 'last_login_at'],
    description: 'An upstream identity linked to an account.',
    properties: {
      provider: str('Provider alias.'),
      subject: str('The subject at that provider.'),
      email: nullable(str('The email it last signed in with; null for a pre-linked identity that never signed in.')),
      created_at: time,
      last_login_at: nullable(time),
    },
  },
  UserCreate: {
    type: 'object',
    required: ['email', 'email_verified'],
    additionalProperties: false,
    properties: {
      email: { type: 'string', format: 'email', maxLength: 320 },
      email_verified: { type: 'boolean', description: 'Whether the address is known to belong to the person; tokens release it as `email_verified`.' },
      password: { type: 'string', writeOnly: true, minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH, description: 'Write-only; stored as a scrypt hash. Without one the account signs in only through linked identities.' },
      name: nullable(userName),
      given_name: nullable(userName),
      family_name: nullable(userName),
    },
  },
  UserPatch: {
    type: 'object',
    additionalProperties: false,
    description: 'JSON Merge Patch (RFC 7396): null clears a name (and the email of an account without a password). `disabled: true` ends every session of the account.',
    properties: {
      email: nullable({ type: 'string', format: 'email', maxLength: 320 }),
      email_verified: { type: 'boolean' },
      disabled: { type: 'boolean' },
      name: nullable(userName),
      given_name: nullable(userName),
      family_name: nullable(userName),
    },
  },
  IdentityLink: {
    type: 'object',
    required: ['provider', 'subject'],
    additionalProperties: false,
    properties: { provider: str('Alias of an existing provider.'), subject: { type: 'string', minLength: 1, maxLength: 1024, description: 'The subject (`sub`, or SAML NameID) at that provider.' } },
  },
  Session: {
    type: 'object',
    required: ['id', 'account_id', 'idp', 'amr', 'created_at', 'expires_at'],
    properties: {
      id: str('The engine session uid.'),
      account_id: { type: 'string', format: 'uuid' },
      idp: str('Provider alias, or `local`.'),
      amr: strings,
      upstream: nullable({
        type: 'object',
        properties: { issuer: nullable(str()), subject: nullable(str()), session_id: nullable(str()), name_id: nullable(str()), name_id_format: nullable(str()), session_index: nullable(str()) },
      }),
      created_at: time,
      expires_at: time,
      started_from: nullable({
        type: 'object',
        description: 'Where the session signed in: the client address the token engine saw and the browser\'s User-Agent (null for sessions recorded before this was kept).',
        properties: { ip: nullable(str()), user_agent: nullable(str()) },
      }),
    },
  },
  SessionDetail: {
    type: 'object',
    required: ['id', 'active', 'logout_deliveries'],
    description: 'A session (its login row when still known) and the back-channel logout deliveries queued when it ended.',
    properties: {
      id: str('The engine session uid.'),
      active: { type: 'boolean', description: 'True while the session is signed in.' },
      account_id: { type: 'string', format: 'uuid' },
      idp: str('Provider alias, or `local`.'),
      amr: strings,
      upstream: nullable({ type: 'object', additionalProperties: true }),
      created_at: time,
      expires_at: time,
      logout_deliveries: { type: 'array', items: ref('LogoutDelivery') },
    },
  },
  LogoutDelivery: {
    type: 'object',
    required: ['id', 'session', 'client_id', 'account_id', 'sid', 'reason', 'status', 'attempts', 'next_attempt_at', 'give_up_at', 'created_at', 'delivered_at', 'last_error'],
    properties: {
      id: str('Delivery id.'),
      session: str('Uid of the session that ended.'),
      client_id: str('The application told.'),
      account_id: str('The `sub` of the logout token.'),
      sid: nullable(str('The `sid` the application knows the session by.')),
      reason: { type: 'string', enum: ['rp_logout', 'upstream_logout', 'admin', 'expired', 'account'], description: 'How the session ended (`account`: its person ended it on the account page).' },
      status: { type: 'string', enum: ['pending', 'delivered', 'failed'], description: '`pending` waits or retries, `delivered` was acknowledged, `failed` was given up after the retry period.' },
      attempts: { type: 'integer' },
      next_attempt_at: nullable({ ...time, description: 'When a pending delivery is tried next.' }),
      give_up_at: time,
      created_at: time,
      delivered_at: nullable(time),
      last_error: nullable(str('Why the last attempt failed.')),
    },
  },
  SessionsEnded: {
    type: 'object',
    required: ['ended'],
    properties: { ended: { type: 'integer', description: 'How many sessions ended.' } },
  },
  HrdExplanation: {
    type: 'object',
    required: ['decision', 'rule', 'candidates'],
    properties: {
      decision: {
        type: 'object',
        required: ['action'],
        properties: {
          action: { type: 'string', enum: ['redirect', 'picker', 'error'] },
          provider: str(),
          providers: strings,
          local_login: { type: 'boolean' },
          email_first: { type: 'boolean' },
          unmatched_domain: str(),
          error: { type: 'string', enum: ['provider_not_allowed', 'provider_unknown'] },
        },
      },
      rule: { type: 'string', enum: ['idp_hint', 'kc_idp_hint', 'acr_values', 'login_hint', 'email', 'last_used', 'single_provider', 'picker'] },
      candidates: strings,
    },
  },
  AuditEntry: {
    type: 'object',
    required: ['id', 'at', 'actor', 'action', 'resource_type', 'resource_id', 'before', 'after'],
    properties: {
      id: { type: 'integer' },
      at: time,
      actor: str('client_id of the admin token that made the change.'),
      action: { type: 'string', enum: ['create', 'replace', 'update', 'enable', 'disable', 'delete', 'end', 'refresh', 'link', 'unlink', 'retry'] },
      resource_type: { type: 'string', enum: [...AUDITED_RESOURCES] },
      resource_id: str(),
      before: nullable({ type: 'object', additionalProperties: true, description: 'Representation before the change, without secrets.' }),
      after: nullable({ type: 'object', additionalProperties: true, description: 'Representation after the change, without secrets.' }),
      request_id: nullable(str()),
    },
  },
};
