import crypto from 'node:crypto';

/**
 * CSRF tokens for interaction forms: an HMAC of the interaction uid. The engine only accepts a
 * uid together with its own signed interaction cookie, so a token is useless in another browser.
 */
export class CsrfTokens {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  /** The token to embed in every form of interaction `uid`. */
  issue(uid: string): string {
    return crypto.createHmac('sha256', this.#key).update(`interaction:${uid}`).digest('base64url');
  }

  /** True when `token` was issued for `uid`. */
  verify(uid: string, token: unknown): boolean {
    if (typeof token !== 'string') return false;
    const expected = Buffer.from(this.issue(uid));
    const actual = Buffer.from(token);
    return actual.length === expected.length && crypto.timingSafeEqual(actual, expected);
  }
}
