/**
 * The provider contract: what every upstream protocol (one file each in `providers/`) offers the
 * protocol-neutral federation flow in `src/federation/`. Nothing here knows express, knex or nunjucks:
 * a provider type returns data and the routes write responses. Its failures are Realmgate's one
 * error type (`src/errors.ts`, which imports nothing but node:crypto and its code table).
 */
import { RealmgateError, type ErrorCode } from '../src/errors.ts';

/** The upstream protocols Realmgate speaks. */
export type ProviderKind = 'oidc' | 'saml' | 'oauth2';

/** One invalid field of a provider's settings or secrets: `field` is a dotted path such as `settings.issuer`. */
export interface Problem {
  field: string;
  message: string;
}

/**
 * Which upstream email addresses count as verified: `domains` only those in the provider's own
 * domains, `any` every address the upstream says it verified (a social IdP), `none` no address.
 */
export type EmailTrust = 'domains' | 'any' | 'none';

/**
 * What a first sign-in does when an account with the identity's email exists: `confirm` asks the
 * person to prove the account is theirs by signing in to it, `trusted_email` links at once when the
 * email is trusted, `none` never links (a separate account).
 */
export type LinkingRule = 'confirm' | 'trusted_email' | 'none';

/** Whether a first sign-in may create an account (`auto`) or only reach existing ones (`existing_only`). */
export type ProvisioningRule = 'auto' | 'existing_only';

/** How a provider's identities meet local accounts; protocol-neutral, the same for every kind. */
export interface LinkingPolicy {
  emailTrust: EmailTrust;
  linking: LinkingRule;
  provisioning: ProvisioningRule;
}

/** The policy of a provider created without one. */
export const DEFAULT_LINKING_POLICY: Readonly<LinkingPolicy> = Object.freeze({ emailTrust: 'domains', linking: 'confirm', provisioning: 'auto' });

/** A provider row as stored, secrets already unsealed. Immutable for a given `version`. */
export interface StoredProvider {
  alias: string;
  kind: ProviderKind;
  displayName: string;
  enabled: boolean;
  domains: string[];
  settings: Record<string, unknown>;
  secrets: Record<string, string>;
  claimMappings: Record<string, string>;
  linkingPolicy: LinkingPolicy;
  /** A local second factor after this provider's sign-ins (`require_local_mfa`; absent: false, the upstream is trusted). */
  requireLocalMfa?: boolean | undefined;
  version: number;
}

/** What `open` may use: network policy, timeouts, URLs of Realmgate's own endpoints. */
export interface OpenContext {
  /** Realmgate's issuer, e.g. `https://login.example.com`. */
  issuer: string;
  /** Absolute URL of a per-provider endpoint, e.g. `endpointUrl('acme', 'callback')`. */
  endpointUrl(alias: string, path: string): string;
  /** Timeout for each upstream HTTP request. */
  timeoutMs: number;
  /** When false, upstream URLs resolving to loopback or private addresses are refused. */
  allowPrivateNetwork: boolean;
  /** `fetch` with the SSRF guard and timeout applied; providers use it for every upstream request. */
  fetch: typeof fetch;
  /**
   * One-time message ids kept in the shared database (SAML assertion IDs), so a replay is caught
   * on every node. Required by kinds that accept bearer assertions (`saml`); `open` fails without it.
   */
  replay?: ReplayStore | undefined;
}

/** Remembers one-time ids in storage every node shares. */
export interface ReplayStore {
  /** Records `key` until `expiresAt`; resolves false when it is already recorded and unexpired (a replay). */
  rememberOnce(key: string, expiresAt: Date): Promise<boolean>;
}

/** A login being started at the upstream provider. */
export interface LoginRequest {
  /** Opaque, unguessable id of this login transaction; round-trips as OAuth `state` or SAML `RelayState`. */
  transactionId: string;
  /** Email the user gave, passed upstream as a hint. */
  loginHint?: string | undefined;
  /** The application asked for a fresh sign-in (`prompt=login`). */
  forceLogin?: boolean | undefined;
  /** The application's `max_age`, passed upstream. */
  maxAgeSeconds?: number | undefined;
}

/** How to send the browser upstream; `transaction` is what `finishLogin` needs back (stored sealed). */
export type LoginStart =
  | { type: 'redirect'; url: string; transaction: Record<string, unknown> }
  | { type: 'post-form'; action: string; fields: Record<string, string>; transaction: Record<string, unknown> };

/** The upstream's answer as received by a callback route: query or form parameters, and the full URL. */
export interface CallbackInput {
  url: URL;
  params: Record<string, string>;
}

/** Where a local session came from upstream, stored with it for upstream logout. */
export interface UpstreamSession {
  issuer?: string | undefined;
  subject?: string | undefined;
  /** OIDC `sid` of the upstream session. */
  sessionId?: string | undefined;
  /** SAML NameID, with its Format and qualifiers: a LogoutRequest must name the subject exactly. */
  nameId?: string | undefined;
  nameIdFormat?: string | undefined;
  nameQualifier?: string | undefined;
  spNameQualifier?: string | undefined;
  sessionIndex?: string | undefined;
  /** The upstream ID token, sent back as `id_token_hint` when signing out upstream. */
  idToken?: string | undefined;
}

/** A signed-in upstream user, normalised across protocols. */
export interface UpstreamIdentity {
  /** Stable subject at the upstream (OIDC `sub`, SAML persistent NameID). */
  subject: string;
  email?: string | undefined;
  emailVerified?: boolean | undefined;
  /** Every claim or attribute the upstream sent, before mapping. */
  claims: Record<string, unknown>;
  /** Upstream authentication methods, when it said. */
  amr?: string[] | undefined;
  upstreamSession: UpstreamSession;
  /**
   * Profile fields this upstream sends only sometimes (Apple: the name, on the first
   * authorization only): when one is absent, the linked account keeps the value it has.
   */
  keepWhenAbsent?: ('name' | 'givenName' | 'familyName')[] | undefined;
}

/** A provider opened once per `(alias, version)` (kept across versions that change nothing opening depends on): discovery done, keys and certificates loaded. */
export interface OpenedProvider {
  readonly alias: string;
  readonly version: number;
  /** Builds the redirect or auto-post form that starts a login upstream. */
  startLogin(request: LoginRequest): Promise<LoginStart>;
  /** Validates the upstream's answer against the stored transaction and returns the identity. */
  finishLogin(input: CallbackInput, transaction: Record<string, unknown>): Promise<UpstreamIdentity>;
  /**
   * Optional: validates an unsolicited answer (SAML IdP-initiated login) that belongs to no login
   * transaction. Rejects with `response_invalid` unless the provider allows unsolicited logins.
   */
  finishUnsolicitedLogin?(input: CallbackInput): Promise<UnsolicitedLogin>;
  /**
   * Optional: what a login needs from the upstream beyond opening it (the ID token algorithm it
   * signs with, the token endpoint authentication it accepts), checked against what `open` loaded.
   * No network; the admin API's provider test reports each check.
   */
  readiness?(): ProviderReadinessCheck[];
  /**
   * Optional: what the admin API's provider test can learn over the network without a person
   * signing in (an `oauth2` provider's endpoints answer, its client credentials are accepted),
   * and what it cannot; one check each.
   */
  probe?(): Promise<ProviderReadinessCheck[]>;
  /** Optional: releases timers or caches held by this opened provider. */
  close?(): void;
}

/** One check of `readiness`: a stable name, its outcome and what was found. */
export interface ProviderReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** How to send the browser to the upstream (or back to it): a redirect, or an auto-posting form. */
export type BrowserSend =
  | { type: 'redirect'; url: string }
  | { type: 'post-form'; action: string; fields: Record<string, string> };

/** A logout message from the upstream, as a logout route received it. */
export type UpstreamLogoutInput =
  /** OIDC Back-Channel Logout: the `logout_token` POSTed to `/federation/<alias>/backchannel-logout`. */
  | { channel: 'backchannel'; logoutToken: string }
  /** OIDC Front-Channel Logout: `iss` and `sid` in the query of `/federation/<alias>/frontchannel-logout`. */
  | { channel: 'frontchannel'; params: Record<string, string> }
  /** A SAML LogoutRequest at `/federation/<alias>/saml/slo`: query (HTTP-Redirect, with the raw query string for its signature) or form (HTTP-POST). */
  | { channel: 'saml'; binding: 'redirect' | 'post'; params: Record<string, string>; rawQuery: string };

/** Which local sessions an upstream logout ends: those whose stored upstream session matches every field given. */
export interface UpstreamLogoutMatch {
  issuer: string;
  /** OIDC `sid`. */
  sessionId?: string | undefined;
  /** OIDC `sub`: with no `sid`, every session of the subject at that issuer. */
  subject?: string | undefined;
  /** SAML NameID with its Format and qualifiers (absent qualifiers match absent ones only). */
  nameId?: { value: string; format: string | undefined; nameQualifier: string | undefined; spNameQualifier: string | undefined } | undefined;
  /** SAML SessionIndex values; when present, only those sessions. */
  sessionIndexes?: string[] | undefined;
}

/** A validated upstream logout: what to end, and (SAML) how to answer the upstream once it is done. */
export interface AcceptedUpstreamLogout {
  match: UpstreamLogoutMatch;
  /** The answer to the upstream (a signed LogoutResponse to its SLO endpoint), when the protocol answers. */
  respond?(outcome: { success: boolean }): Promise<BrowserSend>;
}

/**
 * Capability: the provider's upstream can end Realmgate's sessions (OIDC back- and front-channel
 * logout, SAML IdP-initiated single logout). `acceptLogout` validates the message in full and
 * rejects with `response_invalid` or `replayed`; it never ends anything itself.
 */
export interface ReceivesUpstreamLogout {
  acceptLogout(input: UpstreamLogoutInput): Promise<AcceptedUpstreamLogout>;
}

/** The upstream sign-out to send the browser to, and what `finishLogout` needs back (stored sealed). */
export type LogoutStart = BrowserSend & { transaction: Record<string, unknown> };

/**
 * Capability: Realmgate can end the user's session at the upstream when they sign out of an
 * application (OIDC RP-initiated logout, SAML SP-initiated single logout).
 */
export interface SignsOutUpstream {
  /**
   * The upstream sign-out for a local session that came from `session`; undefined when the
   * provider's `upstream_logout` setting is off or the upstream offers no logout endpoint.
   * `returnUrl` is Realmgate's endpoint the upstream sends the browser back to (OIDC
   * `post_logout_redirect_uri`; a SAML IdP answers at the SP's advertised SLO endpoint instead);
   * `transactionId` round-trips as OAuth `state` or SAML `RelayState`.
   */
  startLogout(session: UpstreamSession, request: { transactionId: string; returnUrl: string }): Promise<LogoutStart | undefined>;
  /** Validates the upstream's answer on the return URL (SAML: a signed LogoutResponse answering the stored request). */
  finishLogout(input: CallbackInput, transaction: Record<string, unknown>): Promise<void>;
}

/** True when the opened provider can receive upstream logout. */
export function receivesUpstreamLogout(provider: OpenedProvider): provider is OpenedProvider & ReceivesUpstreamLogout {
  return typeof (provider as Partial<ReceivesUpstreamLogout>).acceptLogout === 'function';
}

/** True when the opened provider can sign the user out upstream. */
export function signsOutUpstream(provider: OpenedProvider): provider is OpenedProvider & SignsOutUpstream {
  const candidate = provider as Partial<SignsOutUpstream>;
  return typeof candidate.startLogout === 'function' && typeof candidate.finishLogout === 'function';
}

/** A validated unsolicited login and the application (client_id) the provider sends such logins to. */
export interface UnsolicitedLogin {
  identity: UpstreamIdentity;
  clientId: string;
}

/** What `prepare` adds to a provider's input before it is checked and stored. */
export interface PreparedProvider {
  /** Settings to merge over the input's settings (e.g. a generated `sp_certificate`). */
  settings: Record<string, unknown>;
  /** Secrets to merge over the input's secrets (e.g. a generated `sp_private_key`). */
  secrets: Record<string, string>;
}

/** A certificate the provider depends on, as shown in the provider's status. */
export interface CertificateStatus {
  /** What it is for, e.g. `idp-signing` or `sp`. */
  use: string;
  subject: string;
  /** SHA-256 fingerprint, colon-separated hex. */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
}

/** The outcome of re-reading a provider's upstream configuration (SAML metadata, certificates). */
export interface ProviderRefresh {
  /**
   * Digest of the upstream configuration `open` would load, or undefined when nothing is loaded
   * from the network. A digest different from the last one means every node must reopen.
   */
  digest: string | undefined;
  /** Certificates in use and their validity, for the provider's status. */
  certificates: CertificateStatus[];
  /** When to refresh next. */
  refreshAfterSeconds: number;
}

/** One upstream protocol. */
export interface ProviderType {
  readonly kind: ProviderKind;
  /** Names of secrets this kind accepts (write-only in the admin API). */
  readonly secretNames: readonly string[];
  /** Validates settings and secrets without network access, reporting every problem at once. */
  check(settings: unknown, secrets: Record<string, string>): Problem[];
  /** Does the expensive work once (discovery, metadata, certificates). */
  open(provider: StoredProvider, context: OpenContext): Promise<OpenedProvider>;
  /**
   * Optional: what a provider of this kind needs generated before `check` (the SAML SP key pair).
   * Called on create, and on replace with the `existing` provider so generated values are kept
   * when the input omits them. The result is merged over the input.
   */
  prepare?(input: { alias: string; settings: Record<string, unknown>; secrets: Record<string, string> }, existing?: StoredProvider): Promise<PreparedProvider>;
  /**
   * Optional: the service-provider metadata document (SAML) the IdP's administrator imports. Built
   * from stored settings alone, so it is there before the IdP is reachable or the provider enabled.
   */
  serviceProviderMetadata?(provider: StoredProvider, context: Pick<OpenContext, 'issuer' | 'endpointUrl'>): string;
  /**
   * Optional: the linking policy fields a provider with these settings gets when the admin API
   * request leaves them out (an `oauth2` preset's `email_trust`).
   */
  defaultLinkingPolicy?(settings: Record<string, unknown>): Partial<LinkingPolicy>;
  /** Optional: re-reads upstream configuration (metadata URL) and reports certificate validity. */
  refresh?(provider: StoredProvider, context: OpenContext): Promise<ProviderRefresh>;
}

/**
 * A failure talking to or trusting an upstream: a RealmgateError whose code is one of the
 * provider contract's (`ProviderErrorCode`). The message is for the log only; the user sees the
 * code's safe sentence naming the provider (`src/errors/codes.ts`). A subclass because the
 * federation counts provider failures and reads `upstreamError` by type.
 */
export class ProviderError extends RealmgateError {
  declare readonly code: ProviderErrorCode;
  /** With `upstream_error`: the upstream's own error code, e.g. OAuth `access_denied` (SAML kinds map their status to it). */
  readonly upstreamError: string | undefined;

  constructor(
    code: ProviderErrorCode,
    options: { alias?: string | undefined; detail?: string; cause?: unknown; upstreamError?: string | undefined } = {},
  ) {
    super(code, { alias: options.alias, detail: options.detail ?? code, cause: options.cause });
    this.name = 'ProviderError';
    this.upstreamError = options.upstreamError;
  }
}

/**
 * How `OpenContext.fetch` fails: the URL was refused by the SSRF guard, timed out, or the network
 * failed. A cause only: providers wrap it in a ProviderError before it leaves them.
 */
export class UpstreamRequestError extends Error {
  readonly reason: 'blocked' | 'timeout' | 'network';
  readonly url: string;

  constructor(reason: 'blocked' | 'timeout' | 'network', url: string, options: { detail?: string; cause?: unknown } = {}) {
    super(options.detail ?? `upstream request to ${url} failed: ${reason}`, { cause: options.cause });
    this.name = 'UpstreamRequestError';
    this.reason = reason;
    this.url = url;
  }
}

/** Stable failure codes of the provider contract (a part of `ErrorCode`). */
export type ProviderErrorCode = Extract<ErrorCode,
  | 'unavailable' // could not be opened (bad settings, discovery failed)
  | 'upstream_unreachable' // network error or timeout
  | 'upstream_error' // the IdP answered with an error (e.g. access_denied)
  | 'response_invalid' // signature, audience, issuer, expiry, nonce, state...
  | 'replayed' // an assertion or code seen before
  | 'transaction_invalid' // missing, expired or mismatched login transaction
>;
