import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { generate } from 'selfsigned';
import { SignedXml } from 'xml-crypto';
import * as xmlenc from 'xml-encryption';

/** A signing key pair of the test IdP. */
export interface TestKey {
  privateKeyPem: string;
  certificatePem: string;
}

/** One attribute in a built assertion. */
export interface TestAttribute {
  name: string;
  friendlyName?: string;
  values: string[];
}

/** Everything a test may vary in a response; defaults make a valid answer to `inResponseTo`. */
export interface ResponseOptions {
  /** The SP's ACS URL: default Destination and Recipient. */
  acsUrl: string;
  /** The SP's entity ID: the Audience. */
  audience: string;
  /** The AuthnRequest ID answered; omitted for an unsolicited response. */
  inResponseTo?: string | undefined;
  /** Overrides the SubjectConfirmationData InResponseTo only (default `inResponseTo`). */
  subjectInResponseTo?: string | undefined;
  nameId?: string;
  nameIdFormat?: string;
  sessionIndex?: string;
  attributes?: TestAttribute[];
  /** Response Destination; `null` leaves it out. */
  destination?: string | null;
  recipient?: string;
  issuer?: string;
  assertionId?: string;
  responseId?: string;
  /** Conditions window. */
  notBefore?: Date;
  notOnOrAfter?: Date;
  /** SubjectConfirmationData NotOnOrAfter. */
  subjectNotOnOrAfter?: Date;
  authnInstant?: Date;
  authnContextClassRef?: string;
  /** Sign the assertion (default true). */
  signAssertion?: boolean;
  /** Sign the whole response (default false). */
  signResponse?: boolean;
  /** Encrypt the (signed) assertion to this SP certificate. */
  encryptTo?: string;
  /** Sign with this key instead of the IdP's current one. */
  signingKey?: TestKey;
  /** Signature and digest algorithms of every signature (RSA-SHA256, SHA-256 by default). */
  algorithms?: SignatureAlgorithms;
  /** A non-success top-level status, e.g. `urn:oasis:names:tc:SAML:2.0:status:Responder`: no assertion then. */
  status?: string;
  /** A second-level status code under `status`, e.g. `urn:oasis:names:tc:SAML:2.0:status:AuthnFailed`. */
  subStatus?: string;
}

const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  md: 'urn:oasis:names:tc:SAML:2.0:metadata',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
};

/** Format URNs for building responses. */
export const FORMATS = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
};

/** Escapes text for XML attribute values and content. */
export function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function iso(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function newId(): string {
  return `_${crypto.randomBytes(16).toString('hex')}`;
}

/** Signature and digest algorithm URIs of a signature; RSA-SHA256 with SHA-256 digests unless set. */
export interface SignatureAlgorithms {
  signatureAlgorithm?: string | undefined;
  digestAlgorithm?: string | undefined;
}

/** Signs the root element `localName` of `xml`, the signature placed right after its Issuer. */
export function signRoot(xml: string, localName: 'Assertion' | 'Response' | 'LogoutRequest' | 'LogoutResponse', key: TestKey, algorithms: SignatureAlgorithms = {}): string {
  const sig = new SignedXml({
    privateKey: key.privateKeyPem,
    publicCert: key.certificatePem,
    signatureAlgorithm: algorithms.signatureAlgorithm ?? 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: `/*[local-name(.)='${localName}']`,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: algorithms.digestAlgorithm ?? 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `/*[local-name(.)='${localName}']/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return sig.getSignedXml();
}

/** Encrypts an assertion to an SP certificate as a `<saml:EncryptedAssertion>`. */
export async function encryptAssertion(assertionXml: string, certificatePem: string): Promise<string> {
  const publicKey = crypto.createPublicKey(certificatePem).export({ type: 'spki', format: 'pem' }).toString();
  const encrypted = await new Promise<string>((resolve, reject) =>
    xmlenc.encrypt(
      assertionXml,
      {
        rsa_pub: publicKey,
        pem: certificatePem,
        encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
        keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    ),
  );
  return `<saml:EncryptedAssertion xmlns:saml="${NS.saml}">${encrypted}</saml:EncryptedAssertion>`;
}

/** Generates an RSA key pair with a self-signed certificate, valid from `notBefore` for `days`. */
export async function generateTestKey(commonName = 'Test IdP', options: { notBefore?: Date; days?: number } = {}): Promise<TestKey> {
  const notBeforeDate = options.notBefore ?? new Date(Date.now() - 86_400_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + (options.days ?? 365) * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: commonName }], { keySize: 2048, algorithm: 'sha256', notBeforeDate, notAfterDate });
  return { privateKeyPem: pems.private, certificatePem: pems.cert };
}

/** An AuthnRequest as the test IdP received it. */
export interface ReceivedAuthnRequest {
  id: string;
  issuer: string;
  destination: string;
  acsUrl: string;
  forceAuthn: boolean;
  nameIdFormat: string | undefined;
  relayState: string | undefined;
  /** The signature (query signature for HTTP-Redirect, XML signature for HTTP-POST) verified with `spCertificatePem`. */
  signatureValid: boolean;
  xml: string;
}

/**
 * A SAML 2.0 IdP for tests: a real signing key, metadata, and responses built per case with
 * xml-crypto (signatures) and xml-encryption (encrypted assertions). It never mocks node-saml:
 * Realmgate's provider validates what this produces exactly as it would an IdP's.
 */
export class TestSamlIdp {
  readonly entityId: string;
  readonly ssoUrl: string;
  readonly sloUrl: string;
  key: TestKey;
  #server: http.Server | undefined;
  #served: { status: number; body: string } = { status: 200, body: '' };
  /** How many times the served metadata was fetched. */
  metadataRequests = 0;

  private constructor(entityId: string, key: TestKey) {
    this.entityId = entityId;
    this.ssoUrl = `${entityId.replace(/\/$/, '')}/sso`;
    this.sloUrl = `${entityId.replace(/\/$/, '')}/slo`;
    this.key = key;
  }

  /** A test IdP with a fresh signing key. */
  static async create(entityId = 'https://idp.example.test/saml'): Promise<TestSamlIdp> {
    return new TestSamlIdp(entityId, await generateTestKey(`IdP ${entityId}`));
  }

  /**
   * The IdP's metadata; `certificates` lists the signing certificates (default: the current key's),
   * `bindings` the SSO and SLO bindings in order, `sloBindings` the SLO ones alone, and
   * `sloResponseUrl` a ResponseLocation apart from the SLO Location.
   */
  metadataXml(options: { certificates?: string[]; bindings?: ('redirect' | 'post')[]; sloBindings?: ('redirect' | 'post')[]; sloResponseUrl?: string } = {}): string {
    const certificates = options.certificates ?? [this.key.certificatePem];
    const bindings = options.bindings ?? ['redirect', 'post'];
    const sloBindings = options.sloBindings ?? bindings;
    const responseLocation = options.sloResponseUrl ? ` ResponseLocation="${xmlEscape(options.sloResponseUrl)}"` : '';
    const keys = certificates
      .map((pem) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''))
      .map((b64) => `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`)
      .join('');
    const binding = (b: string) => `urn:oasis:names:tc:SAML:2.0:bindings:HTTP-${b === 'post' ? 'POST' : 'Redirect'}`;
    const sso = bindings.map((b) => `<md:SingleSignOnService Binding="${binding(b)}" Location="${xmlEscape(this.ssoUrl)}"/>`).join('');
    const slo = sloBindings.map((b) => `<md:SingleLogoutService Binding="${binding(b)}" Location="${xmlEscape(this.sloUrl)}"${responseLocation}/>`).join('');
    return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="${NS.md}" xmlns:ds="${NS.ds}" entityID="${xmlEscape(this.entityId)}">
  <md:IDPSSODescriptor protocolSupportEnumeration="${NS.samlp}" WantAuthnRequestsSigned="true">${keys}${slo}
    <md:NameIDFormat>${FORMATS.persistent}</md:NameIDFormat>${sso}
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;
  }

  /** Serves metadata over HTTP on 127.0.0.1 (one server per IdP); `setMetadata` changes what it serves. Returns its URL. */
  async serveMetadata(body = this.metadataXml()): Promise<string> {
    this.#served = { status: 200, body };
    if (!this.#server) {
      this.#server = http.createServer((_req, res) => {
        this.metadataRequests++;
        res.writeHead(this.#served.status, { 'content-type': 'application/samlmetadata+xml' });
        res.end(this.#served.body);
      });
      await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    }
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/metadata`;
  }

  /** Changes the served metadata (or makes the URL fail with `status`). */
  setMetadata(body: string, status = 200): void {
    this.#served = { status, body };
  }

  /** Stops the metadata server. */
  async close(): Promise<void> {
    if (this.#server) await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
  }

  /** Builds the assertion XML (unsigned). */
  assertionXml(o: ResponseOptions): string {
    const now = Date.now();
    const notBefore = o.notBefore ?? new Date(now - 60_000);
    const notOnOrAfter = o.notOnOrAfter ?? new Date(now + 5 * 60_000);
    const subjectNotOnOrAfter = o.subjectNotOnOrAfter ?? notOnOrAfter;
    const subjectInResponseTo = 'subjectInResponseTo' in o ? o.subjectInResponseTo : o.inResponseTo;
    const attributes = (o.attributes ?? [])
      .map((a) => {
        const friendly = a.friendlyName ? ` FriendlyName="${xmlEscape(a.friendlyName)}"` : '';
        const values = a.values.map((v) => `<saml:AttributeValue>${xmlEscape(v)}</saml:AttributeValue>`).join('');
        return `<saml:Attribute Name="${xmlEscape(a.name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"${friendly}>${values}</saml:Attribute>`;
      })
      .join('');
    return `<saml:Assertion xmlns:saml="${NS.saml}" ID="${o.assertionId ?? newId()}" Version="2.0" IssueInstant="${iso(new Date(now))}">` +
      `<saml:Issuer>${xmlEscape(o.issuer ?? this.entityId)}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${o.nameIdFormat ?? FORMATS.persistent}">${xmlEscape(o.nameId ?? 'u-1001')}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData` +
      (subjectInResponseTo ? ` InResponseTo="${xmlEscape(subjectInResponseTo)}"` : '') +
      ` NotOnOrAfter="${iso(subjectNotOnOrAfter)}" Recipient="${xmlEscape(o.recipient ?? o.acsUrl)}"/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${iso(notBefore)}" NotOnOrAfter="${iso(notOnOrAfter)}"><saml:AudienceRestriction><saml:Audience>${xmlEscape(o.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${iso(o.authnInstant ?? new Date(now - 1000))}" SessionIndex="${xmlEscape(o.sessionIndex ?? '_session-1')}">` +
      `<saml:AuthnContext><saml:AuthnContextClassRef>${o.authnContextClassRef ?? 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport'}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
      `</saml:Assertion>`;
  }

  /** Builds a complete Response XML: assertion signed and/or encrypted, response optionally signed. */
  async responseXml(o: ResponseOptions): Promise<string> {
    const key = o.signingKey ?? this.key;
    let assertion = '';
    if (!o.status) {
      assertion = this.assertionXml(o);
      if (o.signAssertion ?? true) assertion = signRoot(assertion, 'Assertion', key, o.algorithms);
      if (o.encryptTo) assertion = await encryptAssertion(assertion, o.encryptTo);
    }
    let response = this.envelope(o, assertion);
    if (o.signResponse) response = signRoot(response, 'Response', key, o.algorithms);
    return response;
  }

  /** A `<samlp:Response>` around `inner` (assertions, extensions), unsigned: for hand-made variants. */
  envelope(o: ResponseOptions, inner: string): string {
    const destination = o.destination === null ? '' : ` Destination="${xmlEscape(o.destination ?? o.acsUrl)}"`;
    const inResponseTo = o.inResponseTo ? ` InResponseTo="${xmlEscape(o.inResponseTo)}"` : '';
    const status = o.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success';
    return `<samlp:Response xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${o.responseId ?? newId()}" Version="2.0" IssueInstant="${iso(new Date())}"${destination}${inResponseTo}>` +
      `<saml:Issuer>${xmlEscape(o.issuer ?? this.entityId)}</saml:Issuer>` +
      `<samlp:Status><samlp:StatusCode Value="${status}">${o.subStatus ? `<samlp:StatusCode Value="${o.subStatus}"/>` : ''}</samlp:StatusCode></samlp:Status>` +
      inner +
      `</samlp:Response>`;
  }

  /** `responseXml`, base64-encoded as the HTTP-POST binding carries it. */
  async response(o: ResponseOptions): Promise<string> {
    return encodeResponse(await this.responseXml(o));
  }

  /** Reads an AuthnRequest from an HTTP-Redirect URL or HTTP-POST fields and checks its signature. */
  static readAuthnRequest(received: URL | Record<string, string>, spCertificatePem: string): ReceivedAuthnRequest {
    let xml: string;
    let signatureValid: boolean;
    let relayState: string | undefined;
    if (received instanceof URL) {
      const params = received.searchParams;
      xml = zlib.inflateRawSync(Buffer.from(params.get('SAMLRequest')!, 'base64')).toString('utf8');
      relayState = params.get('RelayState') ?? undefined;
      // The redirect binding signs the raw query parameters, in this order, as they were sent.
      const raw = new Map(received.search.slice(1).split('&').map((p) => [p.split('=')[0]!, p] as const));
      const signed = ['SAMLRequest', 'RelayState', 'SigAlg'].filter((k) => raw.has(k)).map((k) => raw.get(k)!).join('&');
      const signature = params.get('Signature');
      signatureValid = !!signature && params.get('SigAlg') === 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256' &&
        crypto.verify('sha256', Buffer.from(signed), spCertificatePem, Buffer.from(signature, 'base64'));
    } else {
      xml = Buffer.from(received.SAMLRequest!, 'base64').toString('utf8');
      relayState = received.RelayState;
      const doc = new DOMParser().parseFromString(xml, 'application/xml');
      const signatureNode = doc.getElementsByTagNameNS(NS.ds, 'Signature')[0];
      signatureValid = false;
      if (signatureNode) {
        const verifier = new SignedXml({ publicCert: spCertificatePem });
        verifier.loadSignature(signatureNode.toString());
        try {
          signatureValid = verifier.checkSignature(xml);
        } catch {
          signatureValid = false;
        }
      }
    }
    const root = new DOMParser().parseFromString(xml, 'application/xml').documentElement!;
    const policy = root.getElementsByTagNameNS(NS.samlp, 'NameIDPolicy')[0];
    return {
      id: root.getAttribute('ID')!,
      issuer: root.getElementsByTagNameNS(NS.saml, 'Issuer')[0]?.textContent ?? '',
      destination: root.getAttribute('Destination') ?? '',
      acsUrl: root.getAttribute('AssertionConsumerServiceURL') ?? '',
      forceAuthn: root.getAttribute('ForceAuthn') === 'true',
      nameIdFormat: policy?.getAttribute('Format') ?? undefined,
      relayState,
      signatureValid,
      xml,
    };
  }
}

/** What a test may vary in a LogoutRequest from the IdP; defaults make a valid one. */
export interface LogoutRequestOptions {
  /** The SP's SLO URL: the Destination (`null` leaves it out). */
  destination: string | null;
  nameId: string;
  nameIdFormat?: string;
  nameQualifier?: string;
  spNameQualifier?: string;
  sessionIndex?: string;
  issuer?: string;
  id?: string;
  issueInstant?: Date;
  notOnOrAfter?: Date;
}

/** A logout message (request or response) as the test IdP received it from Realmgate. */
export interface ReceivedLogoutMessage {
  kind: string;
  id: string;
  destination: string;
  issuer: string;
  inResponseTo: string | undefined;
  status: string | undefined;
  nameId: string | undefined;
  nameIdFormat: string | undefined;
  sessionIndex: string | undefined;
  relayState: string | undefined;
  /** The signature (HTTP-Redirect query signature, HTTP-POST XML signature), verified with the SP certificate. */
  signatureValid: boolean;
}

/** Builds a LogoutRequest XML (unsigned). */
export function logoutRequestXml(idp: TestSamlIdp, o: LogoutRequestOptions): string {
  const attrs = [
    o.nameIdFormat ? ` Format="${xmlEscape(o.nameIdFormat)}"` : '',
    o.nameQualifier ? ` NameQualifier="${xmlEscape(o.nameQualifier)}"` : '',
    o.spNameQualifier ? ` SPNameQualifier="${xmlEscape(o.spNameQualifier)}"` : '',
  ].join('');
  const destination = o.destination === null ? '' : ` Destination="${xmlEscape(o.destination)}"`;
  const notOnOrAfter = ` NotOnOrAfter="${iso(o.notOnOrAfter ?? new Date(Date.now() + 5 * 60_000))}"`;
  return `<samlp:LogoutRequest xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${o.id ?? newId()}" Version="2.0" IssueInstant="${iso(o.issueInstant ?? new Date())}"${destination}${notOnOrAfter}>` +
    `<saml:Issuer>${xmlEscape(o.issuer ?? idp.entityId)}</saml:Issuer>` +
    `<saml:NameID${attrs}>${xmlEscape(o.nameId)}</saml:NameID>` +
    (o.sessionIndex ? `<samlp:SessionIndex>${xmlEscape(o.sessionIndex)}</samlp:SessionIndex>` : '') +
    `</samlp:LogoutRequest>`;
}

/** Builds a LogoutResponse XML (unsigned) answering `inResponseTo`. */
export function logoutResponseXml(idp: TestSamlIdp, o: { destination: string; inResponseTo: string; status?: string; issuer?: string }): string {
  return `<samlp:LogoutResponse xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${newId()}" Version="2.0" IssueInstant="${iso(new Date())}" Destination="${xmlEscape(o.destination)}" InResponseTo="${xmlEscape(o.inResponseTo)}">` +
    `<saml:Issuer>${xmlEscape(o.issuer ?? idp.entityId)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${o.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
    `</samlp:LogoutResponse>`;
}

/**
 * An HTTP-Redirect binding URL for `xml` (`SAMLRequest` or `SAMLResponse`), deflated, with the
 * query signature over `SAML…&RelayState&SigAlg` made with `key` (none when `key` is null), RSA-SHA256 unless `hash` says `sha1`.
 */
export function redirectBindingUrl(target: string, param: 'SAMLRequest' | 'SAMLResponse', xml: string, options: { key: TestKey | null; relayState?: string; hash?: 'sha256' | 'sha1' }): URL {
  const enc = encodeURIComponent;
  const parts = [`${param}=${enc(zlib.deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`];
  if (options.relayState !== undefined) parts.push(`RelayState=${enc(options.relayState)}`);
  if (options.key) {
    const hash = options.hash ?? 'sha256';
    parts.push(`SigAlg=${enc(hash === 'sha1' ? 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' : 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256')}`);
    const signature = crypto.sign(hash, Buffer.from(parts.join('&')), options.key.privateKeyPem).toString('base64');
    parts.push(`Signature=${enc(signature)}`);
  }
  return new URL(`${target}?${parts.join('&')}`);
}

/** The fields of a LogoutRequest or LogoutResponse the tests read, from its XML. */
function logoutMessageFields(xml: string): Omit<ReceivedLogoutMessage, 'relayState' | 'signatureValid'> {
  const root = new DOMParser().parseFromString(xml, 'application/xml').documentElement!;
  const nameId = root.getElementsByTagNameNS(NS.saml, 'NameID')[0];
  const status = root.getElementsByTagNameNS(NS.samlp, 'StatusCode')[0];
  return {
    kind: root.localName ?? '',
    id: root.getAttribute('ID')!,
    destination: root.getAttribute('Destination') ?? '',
    issuer: root.getElementsByTagNameNS(NS.saml, 'Issuer')[0]?.textContent ?? '',
    inResponseTo: root.getAttribute('InResponseTo') ?? undefined,
    status: status?.getAttribute('Value') ?? undefined,
    nameId: nameId?.textContent ?? undefined,
    nameIdFormat: nameId?.getAttribute('Format') ?? undefined,
    sessionIndex: root.getElementsByTagNameNS(NS.samlp, 'SessionIndex')[0]?.textContent ?? undefined,
  };
}

/** Reads a LogoutRequest or LogoutResponse from Realmgate's HTTP-Redirect URL and checks its query signature. */
export function readLogoutMessage(received: URL, spCertificatePem: string): ReceivedLogoutMessage {
  const params = received.searchParams;
  const param = params.has('SAMLRequest') ? 'SAMLRequest' : 'SAMLResponse';
  const xml = zlib.inflateRawSync(Buffer.from(params.get(param)!, 'base64')).toString('utf8');
  const raw = new Map(received.search.slice(1).split('&').map((p) => [p.split('=')[0]!, p] as const));
  const signed = [param, 'RelayState', 'SigAlg'].filter((k) => raw.has(k)).map((k) => raw.get(k)!).join('&');
  const signature = params.get('Signature');
  const signatureValid = !!signature && crypto.verify('sha256', Buffer.from(signed), spCertificatePem, Buffer.from(signature, 'base64'));
  return { ...logoutMessageFields(xml), relayState: params.get('RelayState') ?? undefined, signatureValid };
}

/** True when `xml`'s root element carries an enveloped XML signature that `certificatePem` verifies. */
function rootSignatureValid(xml: string, certificatePem: string): boolean {
  const root = new DOMParser().parseFromString(xml, 'application/xml').documentElement!;
  const signatureNode = [...Array.from(root.childNodes)].find((n) => n.namespaceURI === NS.ds && n.localName === 'Signature');
  if (!signatureNode) return false;
  const verifier = new SignedXml({ publicCert: certificatePem });
  verifier.loadSignature(signatureNode.toString());
  try {
    return verifier.checkSignature(xml) && verifier.getSignedReferences().length === 1;
  } catch {
    return false;
  }
}

/** Reads a LogoutRequest or LogoutResponse Realmgate sent over HTTP-POST (its form fields) and checks its XML signature. */
export function readPostedLogoutMessage(fields: Record<string, string>, spCertificatePem: string): ReceivedLogoutMessage {
  const param = fields.SAMLRequest ? 'SAMLRequest' : 'SAMLResponse';
  const xml = Buffer.from(fields[param]!, 'base64').toString('utf8');
  return { ...logoutMessageFields(xml), relayState: fields.RelayState, signatureValid: rootSignatureValid(xml, spCertificatePem) };
}

/** Base64 of a response XML, as a form field. */
export function encodeResponse(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}
