/**
 * The settings of an `oauth2` provider: what the admin API stores (generic settings, or a `preset`
 * with its own few settings, generic ones beside it winning), checked without network, and the
 * resolved settings a login runs on.
 */
import { z } from 'zod';
import type { Problem } from '../types.ts';
import {
  MICROSOFT_MULTI_TENANTS,
  PRESET_NAMES,
  PRESET_SETTINGS,
  presetFor,
  type Preset,
  type PresetName,
  type PresetSettings,
} from './presets.ts';

const isLoopbackHost = (host: string) => host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';

const endpoint = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://provider.example/oauth/authorize' })
  .refine((v) => v.startsWith('https:') || isLoopbackHost(new URL(v).hostname), 'must use https (http only for a loopback host: localhost, 127.0.0.1, [::1])')
  .refine((v) => !new URL(v).hash, 'must not have a fragment');

/** A JSON pointer (RFC 6901): empty, or `/`-separated reference tokens such as `/id` or `/data/email`. */
const pointer = z.string({ error: 'must be a JSON pointer such as /id' }).regex(/^(\/([^~]|~[01])*)*$/, 'must be a JSON pointer such as /id or /data/email');

/** Authorization parameters Realmgate sets itself; `authorization_params` may not override them. */
const RESERVED_PARAMS = new Set(['client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method']);

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/i;

const givenSchema = z.strictObject({
  /** Fills every generic setting below for a well-known provider; generic settings given beside it win. */
  preset: z.enum(PRESET_NAMES, { error: `must be one of: ${PRESET_NAMES.join(', ')}` }).optional(),
  /** microsoft: `common` (default), `organizations`, `consumers`, or one tenant's id or domain. */
  tenant: z
    .string({ error: 'must be a string' })
    .refine((t) => (MICROSOFT_MULTI_TENANTS as readonly string[]).includes(t) || GUID.test(t) || DOMAIN.test(t), `must be ${MICROSOFT_MULTI_TENANTS.join(', ')}, a tenant id or a tenant domain`)
    .optional(),
  /** microsoft: the only tenant ids (`tid`) whose users may sign in; absent = every tenant `tenant` admits. */
  allowed_tenants: z.array(z.string().regex(GUID, 'must be a tenant id (a GUID)'), { error: 'must be an array of tenant ids' }).min(1, 'must not be empty').optional(),
  /** apple: the Apple developer team id, the `iss` of the client secret JWT. */
  team_id: z.string({ error: 'must be a string' }).regex(/^[A-Z0-9]{10}$/, 'must be the 10-character Apple team id').optional(),
  /** apple: the id of the Sign in with Apple key, the `kid` of the client secret JWT. */
  key_id: z.string({ error: 'must be a string' }).regex(/^[A-Z0-9]{10}$/, 'must be the 10-character Apple key id').optional(),
  /** google: the Google Workspace domain users must belong to (sent as `hd`, checked in the answer). */
  hd: z.string({ error: 'must be a domain name' }).toLowerCase().regex(DOMAIN, 'must be a domain name such as example.com').optional(),
  /** An image on Realmgate's own origin (a path such as `/assets/icons/github.svg`) shown on the login button; the page's CSP allows no other. */
  icon_url: z
    .string({ error: 'must be a path such as /assets/icons/github.svg' })
    .regex(/^\/(?![/\\])[\w\-./~%]{1,500}$/, "must be a path on Realmgate's own origin such as /assets/icons/github.svg (the login page loads images from nowhere else)")
    .optional(),
  /** Realmgate's client id at the provider. */
  client_id: z.string({ error: 'is required' }).min(1, 'is required'),
  /** Identifies the provider in local sessions; the `iss` an ID token must carry when one is verified. Default: see `resolveSettings`. */
  issuer: z.string({ error: 'must be a string' }).min(1, 'must not be empty').optional(),
  authorization_endpoint: endpoint.optional(),
  token_endpoint: endpoint.optional(),
  /** GET with the access token; its JSON answer is where the pointers read. */
  userinfo_endpoint: endpoint.optional(),
  /** GET with the access token answering `[{email, primary, verified}]` (GitHub's /user/emails): the primary verified address. */
  emails_endpoint: endpoint.optional(),
  /** When set, an ID token in the token response is verified against these keys and its claims read beside userinfo. */
  jwks_uri: endpoint.optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be a scope token without spaces'), { error: 'must be an array of scopes' }).optional(),
  /** Send a PKCE (S256) challenge; default true (servers ignore it when they do not support it). */
  pkce: z.boolean({ error: 'must be true or false' }).optional(),
  subject_pointer: pointer.optional(),
  email_pointer: pointer.optional(),
  /** Where the answer says the email is verified (`true` or `"true"`); absent with no `emails_endpoint`: never verified. */
  email_verified_pointer: pointer.optional(),
  name_pointer: pointer.optional(),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post'], { error: 'must be client_secret_basic or client_secret_post' }).optional(),
  response_mode: z.enum(['query', 'form_post'], { error: 'must be query or form_post' }).optional(),
  authorization_params: z
    .record(z.string(), z.string({ error: 'values must be strings' }))
    .refine((p) => Object.keys(p).every((k) => !RESERVED_PARAMS.has(k)), {
      error: (issue) => `may not set ${Object.keys(issue.input as object).filter((k) => RESERVED_PARAMS.has(k)).join(', ')}: Realmgate sets them`,
    })
    .optional(),
});

/** Settings as stored. */
export type GivenOAuth2Settings = z.infer<typeof givenSchema>;

/** What a login runs on: the preset filled in, the given settings over it, defaults applied. */
export interface OAuth2Settings extends Required<Pick<PresetSettings, 'issuer' | 'authorization_endpoint' | 'token_endpoint' | 'scopes' | 'pkce' | 'subject_pointer' | 'email_pointer' | 'name_pointer' | 'token_endpoint_auth_method' | 'authorization_params'>> {
  client_id: string;
  preset: PresetName | undefined;
  userinfo_endpoint: string | undefined;
  emails_endpoint: string | undefined;
  jwks_uri: string | undefined;
  email_verified_pointer: string | undefined;
  response_mode: 'query' | 'form_post';
  tenant: string | undefined;
  allowed_tenants: string[] | undefined;
  team_id: string | undefined;
  key_id: string | undefined;
  hd: string | undefined;
}

/** The secrets of `oauth2` providers. */
export const OAUTH2_SECRET_NAMES = ['client_secret', 'private_key'] as const;

/** Parses the stored settings; every problem at once, fields named `settings.<path>`. */
function parseGiven(settings: unknown): { given?: GivenOAuth2Settings; valid: boolean; problems: Problem[] } {
  const parsed = givenSchema.safeParse(settings ?? {});
  if (parsed.success) return { given: parsed.data, valid: true, problems: [] };
  const problems: Problem[] = [];
  const bad = new Set<string>();
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ field: ['settings', ...issue.path, key].join('.'), message: 'is not a setting of oauth2 providers' });
      for (const key of issue.keys) bad.add(key);
      continue;
    }
    const field = ['settings', ...issue.path.map(String)].join('.');
    bad.add(String(issue.path[0]));
    // One problem per field: a URL that is not http(s) needs no second word about https.
    if (problems.some((p) => p.field === field)) continue;
    problems.push({ field, message: issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message });
  }
  // The fields that did parse, so the checks across fields still run and every problem is listed at once.
  const rest = Object.fromEntries(Object.entries(settings && typeof settings === 'object' ? settings : {}).filter(([key]) => !bad.has(key)));
  const partial = givenSchema.partial({ client_id: true }).safeParse(rest);
  return { given: partial.success ? (partial.data as GivenOAuth2Settings) : undefined, valid: false, problems };
}

/** The preset of stored settings, when they name one. */
export function presetOf(settings: unknown): Preset | undefined {
  const given = givenSchema.safeParse(settings ?? {});
  return given.success && given.data.preset ? presetFor(given.data.preset, given.data) : undefined;
}

/** Resolves stored settings into what a login runs on, with every problem of settings and secrets. */
export function resolveSettings(settings: unknown, secrets: Record<string, string>): { settings?: OAuth2Settings; problems: Problem[] } {
  const { given, valid, problems } = parseGiven(settings);
  for (const name of Object.keys(secrets)) {
    if (!(OAUTH2_SECRET_NAMES as readonly string[]).includes(name)) problems.push({ field: `secrets.${name}`, message: 'is not a secret of oauth2 providers (client_secret, private_key)' });
  }
  if (!given) return { problems };
  const preset = given.preset ? presetFor(given.preset, given) : undefined;
  for (const [name, owner] of Object.entries(PRESET_SETTINGS)) {
    if (given[name as keyof GivenOAuth2Settings] !== undefined && given.preset !== owner) problems.push({ field: `settings.${name}`, message: `is a setting of the ${owner} preset only` });
  }
  const base: Partial<PresetSettings> = preset?.settings ?? {};
  const pick = <K extends keyof PresetSettings>(key: K): PresetSettings[K] | undefined => (given[key] as PresetSettings[K] | undefined) ?? base[key];
  const authorization = pick('authorization_endpoint');
  const token = pick('token_endpoint');
  for (const [field, value] of [['authorization_endpoint', authorization], ['token_endpoint', token]] as const) {
    if (!value && !problems.some((p) => p.field === `settings.${field}`)) problems.push({ field: `settings.${field}`, message: 'is required (or set preset)' });
  }
  const userinfo = pick('userinfo_endpoint');
  const jwksUri = pick('jwks_uri');
  if (!userinfo && !jwksUri && !problems.some((p) => /^settings\.(userinfo_endpoint|jwks_uri)$/.test(p.field))) problems.push({ field: 'settings.userinfo_endpoint', message: 'is required (or jwks_uri, to read the identity from a verified ID token)' });

  const apple = given.preset === 'apple';
  if (apple) {
    if (!given.team_id) problems.push({ field: 'settings.team_id', message: 'is required by the apple preset' });
    if (!given.key_id) problems.push({ field: 'settings.key_id', message: 'is required by the apple preset' });
    if (!secrets.private_key) problems.push({ field: 'secrets.private_key', message: 'is required by the apple preset (the .p8 key from Apple, a PKCS#8 PEM)' });
    if (secrets.client_secret) problems.push({ field: 'secrets.client_secret', message: 'is not used by the apple preset: Realmgate signs the client secret with private_key' });
  } else {
    if (!secrets.client_secret) problems.push({ field: 'secrets.client_secret', message: 'is required' });
    if (secrets.private_key) problems.push({ field: 'secrets.private_key', message: 'is used by the apple preset only' });
  }
  if (given.preset === 'microsoft' && given.tenant && !(MICROSOFT_MULTI_TENANTS as readonly string[]).includes(given.tenant) && given.allowed_tenants) {
    problems.push({ field: 'settings.allowed_tenants', message: 'is for a multi-tenant tenant (common, organizations, consumers); with one tenant only its users sign in' });
  }
  if (!valid || problems.length || !authorization || !token) return { problems };

  const authorizationParams = { ...base.authorization_params, ...given.authorization_params };
  if (given.hd) authorizationParams.hd = given.hd;
  return {
    problems,
    settings: {
      preset: given.preset,
      client_id: given.client_id,
      // A preset's issuer names its provider; with its endpoints moved (GitHub Enterprise Server) the
      // host moved too, unless the issuer is what a verified ID token must carry (Microsoft, Apple).
      issuer: given.issuer ?? (given.authorization_endpoint && !jwksUri ? undefined : base.issuer) ?? new URL(authorization).origin,
      authorization_endpoint: authorization,
      token_endpoint: token,
      userinfo_endpoint: userinfo,
      emails_endpoint: pick('emails_endpoint'),
      jwks_uri: jwksUri,
      scopes: pick('scopes') ?? [],
      pkce: pick('pkce') ?? true,
      subject_pointer: pick('subject_pointer') ?? '/id',
      email_pointer: pick('email_pointer') ?? '/email',
      email_verified_pointer: pick('email_verified_pointer'),
      name_pointer: pick('name_pointer') ?? '/name',
      token_endpoint_auth_method: pick('token_endpoint_auth_method') ?? 'client_secret_basic',
      response_mode: pick('response_mode') ?? 'query',
      authorization_params: authorizationParams,
      tenant: given.preset === 'microsoft' ? (given.tenant ?? 'common') : undefined,
      allowed_tenants: given.allowed_tenants,
      team_id: given.team_id,
      key_id: given.key_id,
      hd: given.hd,
    },
  };
}

/** What each setting means, for the OpenAPI document. */
const SETTING_DESCRIPTIONS: Record<keyof GivenOAuth2Settings, string> = {
  preset: 'Fills every generic setting for a well-known provider (see `OAuth2Presets`); generic settings given beside it win (e.g. a GitHub Enterprise Server host).',
  tenant: 'microsoft: `common` (default), `organizations`, `consumers`, or one tenant id or domain. The ID token issuer is checked against its own `tid`.',
  allowed_tenants: 'microsoft with a multi-tenant `tenant`: the only tenant ids (`tid`) whose people may sign in.',
  team_id: 'apple: the Apple developer team id (`iss` of the ES256 client secret JWT Realmgate signs with secret `private_key`).',
  key_id: 'apple: the Sign in with Apple key id (`kid` of the client secret JWT).',
  hd: 'google: the Google Workspace domain people must belong to; sent as `hd` and checked in the answer.',
  client_id: "Realmgate's client id at the provider.",
  icon_url: "An image on Realmgate's own origin (a path such as `/assets/icons/github.svg`) shown on the provider's login button; the login page's CSP loads images from nowhere else.",
  issuer: "Identifies the provider in local sessions, and the `iss` a verified ID token must carry. Default: the preset's (unless its authorization_endpoint is moved and it verifies no ID token), else the authorization endpoint's origin.",
  authorization_endpoint: 'Where the browser is sent with the authorization request.',
  token_endpoint: 'Where the code is redeemed.',
  userinfo_endpoint: 'GET with the access token; the JSON answer is where the pointers read. Required unless `jwks_uri` is set.',
  emails_endpoint: 'GET with the access token answering `[{email, primary, verified}]` (GitHub /user/emails): the primary verified address is used; none verified: the email is unverified.',
  jwks_uri: 'When set, the ID token of the token response is verified against these keys (signature, issuer, audience, nonce) and its claims read beside userinfo.',
  scopes: 'Scopes requested (default none).',
  pkce: 'Send a PKCE S256 challenge (default true; servers ignore it when they do not support it).',
  subject_pointer: 'JSON pointer to the stable subject (a string, or an integer such as GitHub\'s `id`). Default `/id`.',
  email_pointer: 'JSON pointer to the email. Default `/email`.',
  email_verified_pointer: 'JSON pointer to the verified flag (`true` or `"true"`); absent with no `emails_endpoint`: the email is never verified.',
  name_pointer: 'JSON pointer to the display name. Default `/name`.',
  token_endpoint_auth_method: 'How the client authenticates at the token endpoint. Default `client_secret_basic`.',
  response_mode: '`query` (default) or `form_post` (Apple).',
  authorization_params: 'Extra authorization request parameters (not those Realmgate sets).',
};

/** The JSON Schema of an `oauth2` provider's settings, for the OpenAPI document. */
export function oauth2SettingsJsonSchema(): Record<string, unknown> {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(givenSchema, { io: 'input', unrepresentable: 'any' }) as { $schema?: string; properties: Record<string, Record<string, unknown>> };
  for (const [name, description] of Object.entries(SETTING_DESCRIPTIONS)) if (schema.properties[name]) schema.properties[name].description = description;
  return schema;
}
