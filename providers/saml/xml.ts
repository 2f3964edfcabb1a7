import { DOMParser, type Document, type Element } from '@xmldom/xmldom';
import { SAML_MESSAGE_LIMITS, assertXmlWithinLimits, type XmlLimits } from './xml-limits.ts';

export { SAML_MESSAGE_LIMITS, SAML_METADATA_LIMITS, XmlLimitError, assertXmlWithinLimits, type XmlLimitBreach, type XmlLimits } from './xml-limits.ts';

const ELEMENT_NODE = 1;

/** SAML 2.0 protocol namespace (`samlp:`). */
export const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
/** SAML 2.0 assertion namespace (`saml:`). */
export const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
/** SAML 2.0 metadata namespace (`md:`). */
export const NS_METADATA = 'urn:oasis:names:tc:SAML:2.0:metadata';
/** XML Signature namespace (`ds:`). */
export const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';

/**
 * Parses an XML document strictly: it must be within `limits` (a SAML message's by default:
 * checked by `assertXmlWithinLimits` before the parser runs), any parser error or warning fails
 * it, and a DOCTYPE is refused outright (SAML messages and metadata never carry one; refusing it
 * rules out entity tricks).
 */
export function parseXml(text: string, limits: Readonly<XmlLimits> = SAML_MESSAGE_LIMITS): Document {
  assertXmlWithinLimits(text, limits);
  if (/<!DOCTYPE/i.test(text)) throw new Error('XML with a DOCTYPE is not accepted');
  const doc = new DOMParser({
    onError(level, message) {
      throw new Error(`XML ${level}: ${message}`);
    },
  }).parseFromString(text, 'application/xml');
  if (!doc.documentElement) throw new Error('XML has no root element');
  return doc;
}

/** The direct element children of `parent` named `localName` in namespace `ns`. */
export function childElements(parent: Element, ns: string, localName: string): Element[] {
  const found: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === ELEMENT_NODE) {
      const el = node as Element;
      if (el.namespaceURI === ns && el.localName === localName) found.push(el);
    }
  }
  return found;
}

/** The only direct child named `localName` in `ns`; undefined when absent, an error when repeated. */
export function onlyChild(parent: Element, ns: string, localName: string): Element | undefined {
  const found = childElements(parent, ns, localName);
  if (found.length > 1) throw new Error(`${parent.localName} has ${found.length} ${localName} elements`);
  return found[0];
}

/** The trimmed text content of an element. */
export function textOf(el: Element | undefined): string | undefined {
  const text = el?.textContent?.trim();
  return text ? text : undefined;
}

/** An attribute's value, or undefined when absent or empty. */
export function attributeOf(el: Element | undefined, name: string): string | undefined {
  const value = el?.getAttribute(name);
  return value ? value : undefined;
}

/** True when `el` is `localName` in namespace `ns`. */
export function isElement(el: Element | null | undefined, ns: string, localName: string): el is Element {
  return !!el && el.namespaceURI === ns && el.localName === localName;
}
