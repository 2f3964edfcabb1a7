/**
 * Presets of the `oauth2` kind: the endpoints, scopes, JSON pointers and email trust of the big
 * social providers, as data. An operator gives `preset` and the client credentials; any generic
 * setting given beside `preset` wins over the preset's value (a GitHub Enterprise Server host,
 * another API version).
 *
 * `emailTrust` is the `email_trust` a provider created with the preset gets unless the request
 * sets one: `any` only where the provider itself verifies the addresses it releases.
 */
import type { EmailTrust } from '../types.ts';

/** The names of the presets, in the order the admin API documents them. */
export const PRESET_NAMES = ['github', 'google', 'microsoft', 'apple', 'facebook', 'gitlab', 'linkedin'] as const;

/** One preset's name. */
export type PresetName = (typeof PRESET_NAMES)[number];

/** The generic settings a preset fills, as the admin API names them. */
export interface PresetSettings {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint?: string;
  emails_endpoint?: string;
  jwks_uri?: string;
  scopes: string[];
  pkce: boolean;
  subject_pointer: string;
  email_pointer: string;
  email_verified_pointer?: string;
  name_pointer: string;
  token_endpoint_auth_method: 'client_secret_basic' | 'client_secret_post';
  response_mode?: 'query' | 'form_post';
  authorization_params?: Record<string, string>;
}

/** A preset: its settings, its default email trust, and why that trust. */
export interface Preset {
  settings: PresetSettings;
  emailTrust: EmailTrust;
  /** Why `emailTrust` is what it is (shown in the OpenAPI document and the README). */
  emailTrustReason: string;
}

/** Where an OpenID Connect userinfo answer keeps the subject, the address, its verification and the name. */
const OIDC_USERINFO_POINTERS = {
  subject_pointer: '/sub',
  email_pointer: '/email',
  email_verified_pointer: '/email_verified',
  name_pointer: '/name',
} as const;

/** Microsoft's tenant values that are not one tenant: any work account, any work or personal account, personal accounts. */
export const MICROSOFT_MULTI_TENANTS = ['common', 'organizations', 'consumers'] as const;

/** The tenant id of Microsoft personal accounts (the `tid` of every `consumers` ID token). */
export const MICROSOFT_CONSUMERS_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';

/** Microsoft's ID token issuer, with `{tenantid}` standing for the token's `tid`. */
export const MICROSOFT_ISSUER_TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';

/** The audience of Apple's client secret JWT, and the issuer of its ID tokens. */
export const APPLE_ISSUER = 'https://appleid.apple.com';

/** The preset-specific settings (besides `preset`) and the presets that take them. */
export const PRESET_SETTINGS: Readonly<Record<string, PresetName>> = {
  tenant: 'microsoft',
  allowed_tenants: 'microsoft',
  team_id: 'apple',
  key_id: 'apple',
  hd: 'google',
};

/** The preset `name` filled for its own settings (`tenant` for microsoft). */
export function presetFor(name: PresetName, own: { tenant?: string | undefined }): Preset {
  switch (name) {
    case 'github':
      return {
        settings: {
          issuer: 'https://github.com',
          authorization_endpoint: 'https://github.com/login/oauth/authorize',
          token_endpoint: 'https://github.com/login/oauth/access_token',
          userinfo_endpoint: 'https://api.github.com/user',
          emails_endpoint: 'https://api.github.com/user/emails',
          scopes: ['read:user', 'user:email'],
          pkce: true,
          subject_pointer: '/id',
          email_pointer: '/email',
          name_pointer: '/name',
          token_endpoint_auth_method: 'client_secret_post',
        },
        emailTrust: 'any',
        emailTrustReason: 'GitHub marks each address verified or not in /user/emails; only the primary verified one is used as verified.',
      };
    case 'google':
      return {
        settings: {
          issuer: 'https://accounts.google.com',
          authorization_endpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
          token_endpoint: 'https://oauth2.googleapis.com/token',
          userinfo_endpoint: 'https://openidconnect.googleapis.com/v1/userinfo',
          scopes: ['openid', 'email', 'profile'],
          pkce: true,
          ...OIDC_USERINFO_POINTERS,
          token_endpoint_auth_method: 'client_secret_basic',
        },
        emailTrust: 'any',
        emailTrustReason: 'Google verifies addresses and says so in email_verified.',
      };
    case 'microsoft': {
      const tenant = own.tenant ?? 'common';
      const base = `https://login.microsoftonline.com/${encodeURIComponent(tenant)}`;
      return {
        settings: {
          issuer: MICROSOFT_ISSUER_TEMPLATE,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          token_endpoint: `${base}/oauth2/v2.0/token`,
          jwks_uri: `${base}/discovery/v2.0/keys`,
          scopes: ['openid', 'email', 'profile'],
          pkce: true,
          subject_pointer: '/sub',
          email_pointer: '/email',
          name_pointer: '/name',
          token_endpoint_auth_method: 'client_secret_post',
        },
        emailTrust: 'none',
        emailTrustReason: "Microsoft's email claim is set by the tenant's administrator and is not verified by Microsoft.",
      };
    }
    case 'apple':
      return {
        settings: {
          issuer: APPLE_ISSUER,
          authorization_endpoint: 'https://appleid.apple.com/auth/authorize',
          token_endpoint: 'https://appleid.apple.com/auth/token',
          jwks_uri: 'https://appleid.apple.com/auth/keys',
          scopes: ['name', 'email'],
          pkce: true,
          ...OIDC_USERINFO_POINTERS,
          token_endpoint_auth_method: 'client_secret_post',
          response_mode: 'form_post',
        },
        emailTrust: 'any',
        emailTrustReason: 'Apple verifies addresses (private relay ones too) and says so in email_verified.',
      };
    case 'facebook':
      return {
        settings: {
          issuer: 'https://www.facebook.com',
          authorization_endpoint: 'https://www.facebook.com/v19.0/dialog/oauth',
          token_endpoint: 'https://graph.facebook.com/v19.0/oauth/access_token',
          userinfo_endpoint: 'https://graph.facebook.com/v19.0/me?fields=id,name,email',
          scopes: ['email', 'public_profile'],
          pkce: true,
          subject_pointer: '/id',
          email_pointer: '/email',
          name_pointer: '/name',
          token_endpoint_auth_method: 'client_secret_post',
        },
        emailTrust: 'none',
        emailTrustReason: 'Facebook does not say whether the address it releases was verified.',
      };
    case 'gitlab':
      return {
        settings: {
          issuer: 'https://gitlab.com',
          authorization_endpoint: 'https://gitlab.com/oauth/authorize',
          token_endpoint: 'https://gitlab.com/oauth/token',
          userinfo_endpoint: 'https://gitlab.com/oauth/userinfo',
          scopes: ['openid', 'profile', 'email'],
          pkce: true,
          ...OIDC_USERINFO_POINTERS,
          token_endpoint_auth_method: 'client_secret_basic',
        },
        emailTrust: 'any',
        emailTrustReason: 'GitLab says in email_verified whether the address was confirmed.',
      };
    case 'linkedin':
      return {
        settings: {
          issuer: 'https://www.linkedin.com/oauth',
          authorization_endpoint: 'https://www.linkedin.com/oauth/v2/authorization',
          token_endpoint: 'https://www.linkedin.com/oauth/v2/accessToken',
          userinfo_endpoint: 'https://api.linkedin.com/v2/userinfo',
          scopes: ['openid', 'profile', 'email'],
          // LinkedIn offers PKCE only to native clients it has approved.
          pkce: false,
          ...OIDC_USERINFO_POINTERS,
          token_endpoint_auth_method: 'client_secret_post',
        },
        emailTrust: 'any',
        emailTrustReason: 'LinkedIn says in email_verified whether the address was confirmed.',
      };
  }
}

/** Every preset with what it fills and its default email trust, for the OpenAPI document. */
export function presetsJsonSchema(): Record<string, unknown> {
  const own: Record<PresetName, string> = {
    github: 'only `client_id` and secret `client_secret`',
    google: '`client_id`, secret `client_secret`, optional `hd`',
    microsoft: '`client_id`, secret `client_secret`, optional `tenant` (default `common`) and `allowed_tenants`',
    apple: '`client_id` (the Services ID), `team_id`, `key_id` and secret `private_key` (the .p8 key)',
    facebook: 'only `client_id` and secret `client_secret`',
    gitlab: 'only `client_id` and secret `client_secret`',
    linkedin: 'only `client_id` and secret `client_secret`',
  };
  return {
    type: 'object',
    description: 'What each `oauth2` preset fills (read-only reference). `email_trust` is the provider\'s default unless the request sets one.',
    properties: Object.fromEntries(
      PRESET_NAMES.map((name) => {
        const preset = presetFor(name, {});
        return [name, { type: 'object', description: `Takes ${own[name]}. email_trust \`${preset.emailTrust}\`: ${preset.emailTrustReason}`, default: { ...preset.settings, email_trust: preset.emailTrust } }];
      }),
    ),
  };
}
