/**
 * Bounds on XML that reaches Realmgate from outside (SAML messages, IdP metadata), checked by a
 * single linear scan of the text before any XML parser, canonicaliser or signature check sees
 * it. A deeply nested or huge document costs a DOM parser seconds and xml-crypto more; refusing
 * it here costs one pass over the string and allocates nothing per element.
 */

/** Size, nesting depth and element count one XML document may have. */
export interface XmlLimits {
  /** Largest document, in UTF-8 bytes. */
  maxBytes: number;
  /** Deepest element nesting (the root element is depth 1). */
  maxDepth: number;
  /** Most elements in the whole document. */
  maxElements: number;
}

/**
 * Limits for one SAML protocol message: a Response at the ACS, a LogoutRequest or LogoutResponse.
 * Real messages nest about 10 deep (an encrypted assertion's key info is the deepest) and carry a
 * few hundred elements even with hundreds of group values.
 */
export const SAML_MESSAGE_LIMITS: Readonly<XmlLimits> = Object.freeze({ maxBytes: 512 * 1024, maxDepth: 32, maxElements: 10_000 });

/** Limits for an IdP's metadata (one entity, or a small aggregate picked from by `idp_entity_id`). */
export const SAML_METADATA_LIMITS: Readonly<XmlLimits> = Object.freeze({ maxBytes: 5 * 1024 * 1024, maxDepth: 32, maxElements: 50_000 });

/** Which bound an XML document broke. */
export type XmlLimitBreach = 'bytes' | 'depth' | 'elements' | 'declaration';

/**
 * Thrown by `assertXmlWithinLimits`; `breach` says which bound, the message says it for a log or an
 * administrator. A cause only: callers wrap it in a ProviderError before it leaves the provider.
 */
export class XmlLimitError extends Error {
  readonly breach: XmlLimitBreach;

  constructor(breach: XmlLimitBreach, message: string) {
    super(message);
    this.name = 'XmlLimitError';
    this.breach = breach;
  }
}

const LT = 0x3c; // <
const GT = 0x3e; // >
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const QUOT = 0x22;
const APOS = 0x27;

/**
 * Refuses XML text beyond `limits` (size, depth, element count) or with a DOCTYPE or other
 * markup declaration (SAML never carries one; refusing it rules out entity expansion), in one
 * linear pass that stops at the first breach. It does not check well-formedness: what passes
 * still goes to a strict parser. Call it on every XML document received from outside, before
 * parsing, decrypting or verifying it.
 *
 * @throws XmlLimitError naming the bound that was broken.
 */
export function assertXmlWithinLimits(xml: string, limits: Readonly<XmlLimits>): void {
  // UTF-8 takes at least one byte per UTF-16 unit: a cheap bound first, the exact size after.
  if (xml.length > limits.maxBytes || Buffer.byteLength(xml, 'utf8') > limits.maxBytes) {
    throw new XmlLimitError('bytes', `the XML is larger than ${limits.maxBytes} bytes`);
  }
  let depth = 0;
  let elements = 0;
  let i = xml.indexOf('<');
  while (i !== -1 && i < xml.length - 1) {
    const next = xml.charCodeAt(i + 1);
    let end: number;
    if (next === SLASH) {
      depth--;
      end = xml.indexOf('>', i + 2);
    } else if (next === QUESTION) {
      end = xml.indexOf('?>', i + 2);
      if (end !== -1) end += 1;
    } else if (next === BANG) {
      if (xml.startsWith('<!--', i)) {
        end = xml.indexOf('-->', i + 4);
        if (end !== -1) end += 2;
      } else if (xml.startsWith('<![CDATA[', i)) {
        end = xml.indexOf(']]>', i + 9);
        if (end !== -1) end += 2;
      } else {
        throw new XmlLimitError('declaration', 'XML with a DOCTYPE or other markup declaration is not accepted');
      }
    } else {
      if (++elements > limits.maxElements) throw new XmlLimitError('elements', `the XML has more than ${limits.maxElements} elements`);
      end = endOfTag(xml, i + 1);
      const selfClosing = end !== -1 && xml.charCodeAt(end - 1) === SLASH;
      if (!selfClosing && ++depth > limits.maxDepth) throw new XmlLimitError('depth', `the XML nests elements deeper than ${limits.maxDepth}`);
    }
    if (end === -1) return; // unterminated markup: the parser reports it
    i = xml.indexOf('<', end + 1);
  }
}

/** The index of the `>` that ends a start tag beginning at `from`, skipping quoted attribute values; -1 when none. */
function endOfTag(xml: string, from: number): number {
  let quote = 0;
  for (let j = from; j < xml.length; j++) {
    const c = xml.charCodeAt(j);
    if (quote) {
      if (c === quote) quote = 0;
    } else if (c === QUOT || c === APOS) {
      quote = c;
    } else if (c === GT) {
      return j;
    } else if (c === LT) {
      return j - 1; // a `<` cannot be in a tag: malformed, let the parser say so
    }
  }
  return -1;
}

/**
 * Reads a response body as UTF-8 text, giving up as soon as more than `maxBytes` arrived (a
 * declared `Content-Length` is not trusted: chunked bodies have none).
 *
 * @throws XmlLimitError with breach `bytes` when the body is larger.
 */
export async function readTextWithin(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.byteLength;
    if (received > maxBytes) {
      await reader.cancel();
      throw new XmlLimitError('bytes', `the document is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
