import crypto from 'node:crypto';
import * as xmlenc from 'xml-encryption';
import { SAML, SamlStatusError, ValidateInResponseTo, type SamlConfig } from '@node-saml/passport-saml';
import {
  ProviderError,
  type CallbackInput,
  type LoginRequest,
  type LoginStart,
  type OpenedProvider,
  type ReplayStore,
  type StoredProvider,
  type UnsolicitedLogin,
  type UpstreamIdentity,
  type AcceptedUpstreamLogout,
  type LogoutStart,
  type ReceivesUpstreamLogout,
  type SignsOutUpstream,
  type UpstreamLogoutInput,
  type UpstreamSession,
} from '../types.ts';
import { acceptSamlLogout, finishSamlLogout, startSamlLogout, type SamlLogoutContext } from './logout.ts';
import { amrFor, attributeValues, attributesToClaims } from './attributes.ts';
import type { IdpDescriptor } from './metadata.ts';
import { checkAssertion, checkDecryptedAssertion, checkEnvelope, type ResponseExpectations, type VerifiedAssertion } from './response.ts';
import { NAME_ID_FORMATS, type SamlSettings } from './settings.ts';
import { SAML_MESSAGE_LIMITS, XmlLimitError, assertXmlWithinLimits } from './xml-limits.ts';

/** Largest SAMLResponse looked at, base64 characters (line breaks included); the decoded XML is then held to `SAML_MESSAGE_LIMITS`. */
const MAX_RESPONSE_CHARS = Math.ceil((SAML_MESSAGE_LIMITS.maxBytes * 4) / 3) + 16 * 1024;

/** Our side of one SAML provider: entity ID, endpoints and key pair. */
export interface ServiceProvider {
  entityId: string;
  acsUrl: string;
  sloUrl: string;
  certificatePem: string;
  privateKeyPem: string;
}

/** What `startLogin` stores in the login transaction and `finishLogin` gets back. */
interface SamlTransaction {
  saml_request_id: string;
  max_age_seconds?: number;
}

/** A `saml` provider opened for one `(alias, version)`: IdP resolved, keys loaded. */
export class OpenedSamlProvider implements OpenedProvider, ReceivesUpstreamLogout, SignsOutUpstream {
  readonly alias: string;
  readonly version: number;
  readonly #settings: SamlSettings;
  readonly #idp: IdpDescriptor;
  readonly #sp: ServiceProvider;
  readonly #replay: ReplayStore;
  /** The binding used: the configured one, or the other when the IdP's metadata offers only that. */
  readonly #binding: 'redirect' | 'post';
  /** node-saml configured for validating responses; the same for every response, so built once. */
  readonly #responseValidator: SAML;
  /** What single logout (`logout.ts`) needs of this provider. */
  readonly #logout: SamlLogoutContext;

  constructor(provider: StoredProvider, settings: SamlSettings, idp: IdpDescriptor, sp: ServiceProvider, replay: ReplayStore) {
    this.alias = provider.alias;
    this.version = provider.version;
    this.#settings = settings;
    this.#idp = idp;
    this.#sp = sp;
    this.#replay = replay;
    this.#binding = settings.binding === 'post' ? (idp.sso.post ? 'post' : 'redirect') : idp.sso.redirect ? 'redirect' : 'post';
    this.#responseValidator = this.#saml({});
    this.#logout = { alias: this.alias, settings, idp, sp, replay, saml: (overrides) => this.#saml(overrides ?? {}) };
  }

  /** Validates an IdP-initiated LogoutRequest (HTTP-Redirect or HTTP-POST, signed); see `logout.ts`. */
  acceptLogout(input: UpstreamLogoutInput): Promise<AcceptedUpstreamLogout> {
    return acceptSamlLogout(this.#logout, input);
  }

  /** A signed LogoutRequest to the IdP's single logout endpoint (HTTP-Redirect or HTTP-POST, per its metadata); undefined when `upstream_logout` is off or the IdP has none. */
  startLogout(session: UpstreamSession, request: { transactionId: string }): Promise<LogoutStart | undefined> {
    return startSamlLogout(this.#logout, session, request.transactionId);
  }

  /** Validates the IdP's LogoutResponse (HTTP-Redirect or HTTP-POST, signed) to the stored request. */
  finishLogout(input: CallbackInput, transaction: Record<string, unknown>): Promise<void> {
    return finishSamlLogout(this.#logout, input, transaction);
  }

  /** Builds an AuthnRequest signed with the SP key, for the configured binding; RelayState is the transaction id. */
  async startLogin(request: LoginRequest): Promise<LoginStart> {
    const requestId = `_${crypto.randomBytes(20).toString('hex')}`;
    const transaction: SamlTransaction = { saml_request_id: requestId };
    if (request.maxAgeSeconds !== undefined) transaction.max_age_seconds = request.maxAgeSeconds;
    const saml = this.#saml({
      generateUniqueId: () => requestId,
      forceAuthn: !!request.forceLogin || request.maxAgeSeconds === 0,
      // HTTP-POST carries the XML base64-encoded as is; only HTTP-Redirect deflates it.
      skipRequestCompression: this.#binding === 'post',
    });
    if (this.#binding === 'post') {
      const message = await saml.getAuthorizeMessageAsync(request.transactionId);
      const fields = Object.fromEntries(Object.entries(message).map(([k, v]) => [k, String(v)]));
      return { type: 'post-form', action: this.#ssoUrl(), fields, transaction: { ...transaction } };
    }
    // AD FS and Entra ID read `login_hint` beside the SAMLRequest; other IdPs ignore it.
    const additionalParams: Record<string, string> = request.loginHint ? { login_hint: request.loginHint } : {};
    const url = await saml.getAuthorizeUrlAsync(request.transactionId, undefined, { additionalParams });
    return { type: 'redirect', url, transaction: { ...transaction } };
  }

  /** Validates a SAMLResponse posted to the ACS against the login transaction that sent the AuthnRequest. */
  async finishLogin(input: CallbackInput, transaction: Record<string, unknown>): Promise<UpstreamIdentity> {
    const t = transaction as Partial<SamlTransaction>;
    if (typeof t.saml_request_id !== 'string') {
      throw new ProviderError('transaction_invalid', { alias: this.alias, detail: 'the login transaction has no SAML request ID' });
    }
    const assertion = await this.#verify(input, t.saml_request_id);
    if (typeof t.max_age_seconds === 'number') {
      const oldestMs = Date.now() - t.max_age_seconds * 1000 - this.#settings.clock_skew_seconds * 1000;
      if (assertion.authnInstantMs < oldestMs) {
        throw new ProviderError('response_invalid', { alias: this.alias, detail: `the IdP authenticated the user longer ago than max_age ${t.max_age_seconds}s` });
      }
    }
    return this.#identity(assertion);
  }

  /**
   * Validates an IdP-initiated SAMLResponse; refused unless `allow_idp_initiated` is set. Returns
   * the identity and the application such logins go to (`idp_initiated_client_id`).
   */
  async finishUnsolicitedLogin(input: CallbackInput): Promise<UnsolicitedLogin> {
    const clientId = this.#settings.idp_initiated_client_id;
    if (!this.#settings.allow_idp_initiated || !clientId) {
      throw new ProviderError('response_invalid', {
        alias: this.alias,
        detail: 'unsolicited response: no login transaction matches its RelayState, and IdP-initiated login is not enabled for this provider',
      });
    }
    return { identity: this.#identity(await this.#verify(input, undefined)), clientId };
  }

  /**
   * Envelope checks (InResponseTo among them), then node-saml (signatures on response and/or
   * assertion, decryption, Conditions, audience), then our assertion checks, then the one-time use
   * of the assertion ID. Every failure is a `ProviderError`.
   */
  async #verify(input: CallbackInput, requestId: string | undefined): Promise<VerifiedAssertion> {
    const encoded = input.params.SAMLResponse;
    if (!encoded) throw new ProviderError('response_invalid', { alias: this.alias, detail: 'no SAMLResponse in the request' });
    if (encoded.length > MAX_RESPONSE_CHARS) throw new ProviderError('response_invalid', { alias: this.alias, detail: 'SAMLResponse is too large' });
    const xml = Buffer.from(encoded, 'base64').toString('utf8');
    // Before any parser (ours, then node-saml's and xml-crypto's): a deep or huge document is refused in one pass.
    try {
      assertXmlWithinLimits(xml, SAML_MESSAGE_LIMITS);
    } catch (cause) {
      if (!(cause instanceof XmlLimitError)) throw cause;
      throw new ProviderError('response_invalid', { alias: this.alias, detail: `SAMLResponse refused before parsing: ${cause.message}`, cause });
    }
    const expected: ResponseExpectations = {
      alias: this.alias,
      acsUrl: this.#sp.acsUrl,
      idpEntityId: this.#idp.entityId,
      requestId,
      clockSkewMs: this.#settings.clock_skew_seconds * 1000,
      nowMs: Date.now(),
      allowSha1: this.#settings.allow_sha1,
    };
    const { encryptedAssertions } = checkEnvelope(xml, expected);
    for (const encrypted of encryptedAssertions) checkDecryptedAssertion(await this.#decrypt(encrypted), expected);

    let verifiedXml: string;
    try {
      const { profile } = await this.#responseValidator.validatePostResponseAsync({ SAMLResponse: encoded });
      if (!profile?.getAssertionXml) throw new Error('the response holds no assertion');
      verifiedXml = profile.getAssertionXml();
    } catch (cause) {
      if (cause instanceof ProviderError) throw cause;
      const code = cause instanceof SamlStatusError ? 'upstream_error' : 'response_invalid';
      throw new ProviderError(code, { alias: this.alias, detail: `SAMLResponse rejected: ${(cause as Error).message}`, cause });
    }
    const assertion = checkAssertion(verifiedXml, expected);

    const key = `saml:${crypto.createHash('sha256').update(`${this.#idp.entityId}\n${assertion.id}`).digest('base64url')}`;
    if (!(await this.#replay.rememberOnce(key, assertion.rememberUntil))) {
      throw new ProviderError('replayed', { alias: this.alias, detail: `assertion ${assertion.id} was already used` });
    }
    return assertion;
  }

  /**
   * The upstream identity: the subject is the NameID, or the `subject_attribute` when set. A
   * transient NameID changes at every login, so without `subject_attribute` it is refused.
   */
  #identity(assertion: VerifiedAssertion): UpstreamIdentity {
    const claims = attributesToClaims(assertion.attributes);
    let subject = assertion.nameId;
    if (this.#settings.subject_attribute) {
      const values = attributeValues(assertion.attributes, this.#settings.subject_attribute);
      if (values.length !== 1) {
        throw new ProviderError('response_invalid', {
          alias: this.alias,
          detail: `subject attribute ${this.#settings.subject_attribute} has ${values.length} values; exactly one is needed`,
        });
      }
      subject = values[0]!;
    } else if (assertion.nameIdFormat === NAME_ID_FORMATS.transient) {
      throw new ProviderError('response_invalid', {
        alias: this.alias,
        detail: 'the NameID is transient and cannot identify a returning user; set subject_attribute or ask the IdP for a persistent NameID',
      });
    }
    let email = typeof claims.email === 'string' ? claims.email : undefined;
    if (!email && assertion.nameIdFormat === NAME_ID_FORMATS.emailAddress) {
      email = assertion.nameId;
      claims.email = email;
    }
    claims.name_id = assertion.nameId;
    if (assertion.nameIdFormat) claims.name_id_format = assertion.nameIdFormat;
    const amr = amrFor(assertion.contextClassRefs);
    return {
      subject,
      email,
      // The IdP asserts the address; the provider's email_trust decides whether it counts as verified.
      emailVerified: email ? true : undefined,
      claims,
      amr: amr.length ? amr : undefined,
      upstreamSession: {
        issuer: this.#idp.entityId,
        subject,
        nameId: assertion.nameId,
        nameIdFormat: assertion.nameIdFormat,
        nameQualifier: assertion.nameQualifier,
        spNameQualifier: assertion.spNameQualifier,
        sessionIndex: assertion.sessionIndex,
      },
    };
  }

  /** Decrypts an `EncryptedAssertion` with the SP key; a failure is the response's. */
  async #decrypt(encryptedXml: string): Promise<string> {
    try {
      return await new Promise<string>((resolve, reject) => {
        xmlenc.decrypt(encryptedXml, { key: this.#sp.privateKeyPem }, (error, result) => (error ? reject(error) : resolve(result)));
      });
    } catch (cause) {
      throw new ProviderError('response_invalid', { alias: this.alias, detail: `the encrypted assertion cannot be decrypted: ${(cause as Error).message}`, cause });
    }
  }

  #ssoUrl(): string {
    return this.#idp.sso[this.#binding]!;
  }

  /** A node-saml SAML instance with this provider's options: one per AuthnRequest, one for all responses. */
  #saml(overrides: Partial<SamlConfig>): SAML {
    const s = this.#settings;
    return new SAML({
      issuer: this.#sp.entityId,
      callbackUrl: this.#sp.acsUrl,
      audience: this.#sp.entityId,
      entryPoint: this.#ssoUrl(),
      idpCert: this.#idp.signingCertificates,
      idpIssuer: this.#idp.entityId,
      privateKey: this.#sp.privateKeyPem,
      publicCert: this.#sp.certificatePem,
      decryptionPvk: this.#sp.privateKeyPem,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      wantAssertionsSigned: s.want_assertions_signed,
      wantAuthnResponseSigned: s.want_response_signed,
      acceptedClockSkewMs: s.clock_skew_seconds * 1000,
      identifierFormat: s.name_id_format === 'unspecified' ? null : NAME_ID_FORMATS[s.name_id_format],
      disableRequestedAuthnContext: !s.requested_authn_context,
      ...(s.requested_authn_context ? { authnContext: s.requested_authn_context } : {}),
      // `checkEnvelope` and `checkAssertion` match InResponseTo to the login transaction's request.
      validateInResponseTo: ValidateInResponseTo.never,
      ...overrides,
    });
  }
}
