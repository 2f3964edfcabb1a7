import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../providers/types.ts';
import { RealmgateError, newReference, type ErrorCode } from '../../src/errors.ts';
import { ERRORS } from '../../src/errors/codes.ts';
import { logFailure } from '../../src/errors/handler.ts';
import { toRealmgateError } from '../../src/errors/known-errors.ts';
import { errorPageHtml, problemDocument } from '../../src/errors/render.ts';
import { createViews } from '../../src/interaction/views.ts';
import { LEVEL, captureLogs } from '../support/log-lines.ts';

const CODES = Object.keys(ERRORS) as ErrorCode[];
const views = createViews({ templatesDir: undefined });
/** What must never reach a page or a problem document. */
const SECRET = 'password=hunter2 at db.internal:5432';

describe('the code table', () => {
  it.each(CODES)('gives %s a status, a title and a safe sentence, with and without parameters', (code) => {
    const error = new RealmgateError(code);
    expect(error.status).toBe(ERRORS[code].status);
    expect(error.status).toBeGreaterThanOrEqual(400);
    expect(error.status).toBeLessThan(600);
    expect(ERRORS[code].title.length).toBeGreaterThan(0);
    for (const sentence of [error.safeSentence(), new RealmgateError(code, { alias: 'acme', params: { what: 'client', id: 'web', fields: ['a'], email: 'a@b.example' } }).safeSentence(() => 'Acme Corp')]) {
      expect(sentence).toMatch(/^[A-Z].*[.)]$/);
      expect(sentence).not.toMatch(/undefined|\{|\}/);
    }
  });

  it('groups codes only under problem types that are codes themselves', () => {
    for (const code of CODES) {
      const type = (ERRORS[code] as { type?: ErrorCode }).type;
      if (type) expect(CODES).toContain(type);
    }
  });

  it('names the provider by display name in the sentences of the provider contract', () => {
    const error = new ProviderError('response_invalid', { alias: 'acme', detail: 'signature invalid' });
    expect(error).toBeInstanceOf(RealmgateError);
    expect(error.status).toBe(502);
    expect(error.safeSentence((alias) => (alias === 'acme' ? 'Acme Corp' : undefined))).toBe(
      'We could not verify the answer from Acme Corp, so you are not signed in. Go back to the application and try again.',
    );
    expect(error.safeSentence(() => undefined)).toContain('from acme,');
  });

  it('shows the internal sentence, never the detail, for a failure that is not exposed', () => {
    const error = new RealmgateError('internal', { detail: SECRET, safeMessage: SECRET });
    expect(error.expose).toBe(false);
    expect(error.safeSentence()).toBe(ERRORS.internal.sentence());
  });

  it('turns anything thrown that is not a RealmgateError into internal, keeping it as the cause', () => {
    const thrown = new TypeError(SECRET);
    const error = toRealmgateError(thrown);
    expect(error).toMatchObject({ code: 'internal', status: 500, expose: false, message: SECRET });
    expect(error.cause).toBe(thrown);
  });
});

describe('the HTML renderer', () => {
  it('shows the safe sentence and the reference, and no internal detail', () => {
    const ref = newReference();
    const html = errorPageHtml(views, toRealmgateError(new Error(SECRET, { cause: new Error('deeper secret') })), ref);
    expect(html).toContain('Something went wrong on our side. Try again in a moment.');
    expect(html).toContain(`<code class="ref">${ref}</code>`);
    expect(html).not.toContain('hunter2');
    expect(html).not.toContain('deeper secret');
  });

  it('escapes what a sentence names', () => {
    const html = errorPageHtml(views, new ProviderError('unavailable', { alias: 'acme' }), 'AAAA-BB', () => '<script>x</script>');
    expect(html).toContain('Sign-in with &lt;script&gt;x&lt;/script&gt; is not available right now');
  });
});

describe('the problem+json renderer', () => {
  it('writes type, title, status, detail, errors and the reference', () => {
    const error = new RealmgateError('invalid_request', { params: { fields: ['alias', 'settings.issuer'] }, errors: [{ field: 'alias', message: 'is required' }, { field: 'settings.issuer', message: 'must be https' }] });
    expect(problemDocument(error, 'AAAA-BB')).toEqual({
      type: 'urn:realmgate:problem:invalid_request',
      title: 'The request is invalid',
      status: 400,
      detail: 'Invalid fields: alias, settings.issuer.',
      errors: [{ field: 'alias', message: 'is required' }, { field: 'settings.issuer', message: 'must be https' }],
      reference: 'AAAA-BB',
    });
  });

  it('keeps the admin API problem types for domain codes that group under them', () => {
    const doc = problemDocument(new RealmgateError('last_sign_in_method', { detail: SECRET }), 'AAAA-BB');
    expect(doc).toMatchObject({ type: 'urn:realmgate:problem:conflict', title: 'Conflict with the current state', status: 409 });
    expect(doc.detail).toMatch(/last sign-in method/);
    expect(JSON.stringify(doc)).not.toContain('hunter2');
  });

  it('shows neither detail nor field errors of an internal failure', () => {
    const doc = problemDocument(new RealmgateError('internal', { detail: SECRET, errors: [{ field: SECRET, message: SECRET }] }), 'AAAA-BB');
    expect(doc).toEqual({ type: 'urn:realmgate:problem:internal', title: 'Something went wrong on our side', status: 500, detail: ERRORS.internal.sentence(), reference: 'AAAA-BB' });
  });
});

describe('the log line', () => {
  it('is a warn with code, status and detail but no stack for refused input', () => {
    const { logger, lines } = captureLogs();
    logFailure(logger, new ProviderError('response_invalid', { alias: 'acme', detail: 'SAMLResponse signature invalid', cause: new Error('xml-crypto: digest mismatch') }), 'AAAA-BB');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: LEVEL.warn, ref: 'AAAA-BB', code: 'response_invalid', status: 502, alias: 'acme', detail: 'SAMLResponse signature invalid', causes: ['xml-crypto: digest mismatch'] });
    expect(JSON.stringify(lines[0])).not.toMatch(/"stack"/);
  });

  it('is an error with the cause for our own failures', () => {
    const { logger, lines } = captureLogs();
    logFailure(logger, toRealmgateError(new Error('database went away')), 'AAAA-BB');
    expect(lines[0]).toMatchObject({ level: LEVEL.error, ref: 'AAAA-BB', code: 'internal', status: 500 });
    expect(JSON.stringify(lines[0])).toMatch(/database went away/);
    expect(JSON.stringify(lines[0])).toMatch(/"stack"/);
  });
});
