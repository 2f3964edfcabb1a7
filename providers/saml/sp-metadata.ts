import { DOMImplementation, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';
import { BINDINGS } from './metadata.ts';
import { NS_DSIG, NS_METADATA, NS_PROTOCOL } from './xml.ts';

/** What Realmgate's SP metadata for one provider says. */
export interface SpMetadataInput {
  entityId: string;
  acsUrl: string;
  sloUrl: string;
  /** PEM; the same certificate signs our requests and receives encrypted assertions. */
  certificatePem: string;
  wantAssertionsSigned: boolean;
  /** NameID format URNs, preferred first. */
  nameIdFormats: string[];
}

/** Encryption algorithms the assertion decryption (xml-encryption) supports, strongest first. */
const ENCRYPTION_METHODS = [
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
];

/**
 * Builds the SP metadata an IdP administrator imports: entity ID, signing and encryption
 * certificate, SLO and ACS endpoints, NameID formats, in the schema's element order.
 */
export function buildSpMetadata(input: SpMetadataInput): string {
  const doc = new DOMImplementation().createDocument(NS_METADATA, 'md:EntityDescriptor', null);
  const root = doc.documentElement!;
  root.setAttributeNS('http://www.w3.org/2000/xmlns/', 'xmlns:ds', NS_DSIG);
  root.setAttribute('entityID', input.entityId);

  const sp = append(doc, root, 'md:SPSSODescriptor');
  sp.setAttribute('AuthnRequestsSigned', 'true');
  sp.setAttribute('WantAssertionsSigned', String(input.wantAssertionsSigned));
  sp.setAttribute('protocolSupportEnumeration', NS_PROTOCOL);

  const base64 = input.certificatePem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
  for (const use of ['signing', 'encryption']) {
    const key = append(doc, sp, 'md:KeyDescriptor');
    key.setAttribute('use', use);
    const info = doc.createElementNS(NS_DSIG, 'ds:KeyInfo');
    key.appendChild(info);
    const data = doc.createElementNS(NS_DSIG, 'ds:X509Data');
    info.appendChild(data);
    const cert = doc.createElementNS(NS_DSIG, 'ds:X509Certificate');
    cert.appendChild(doc.createTextNode(base64));
    data.appendChild(cert);
    if (use === 'encryption') {
      for (const algorithm of ENCRYPTION_METHODS) append(doc, key, 'md:EncryptionMethod').setAttribute('Algorithm', algorithm);
    }
  }
  for (const binding of [BINDINGS.redirect, BINDINGS.post]) {
    const slo = append(doc, sp, 'md:SingleLogoutService');
    slo.setAttribute('Binding', binding);
    slo.setAttribute('Location', input.sloUrl);
  }
  for (const format of input.nameIdFormats) append(doc, sp, 'md:NameIDFormat').appendChild(doc.createTextNode(format));
  const acs = append(doc, sp, 'md:AssertionConsumerService');
  acs.setAttribute('Binding', BINDINGS.post);
  acs.setAttribute('Location', input.acsUrl);
  acs.setAttribute('index', '0');
  acs.setAttribute('isDefault', 'true');

  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(doc)}\n`;
}

function append(doc: Document, parent: Element, name: string): Element {
  const el = doc.createElementNS(NS_METADATA, name);
  parent.appendChild(el);
  return el;
}
