/** Reading identities out of OAuth 2.0 answers, and Microsoft's tenant rule: pure functions, exact cases. */
import { describe, expect, it } from 'vitest';
import { emailFromList, readPointer, subjectFrom } from '../../providers/oauth2/identity.ts';
import { expectedIssuer, tenantProblem } from '../../providers/oauth2/microsoft.ts';
import { MICROSOFT_CONSUMERS_TENANT_ID, MICROSOFT_ISSUER_TEMPLATE } from '../../providers/oauth2/presets.ts';
import { resolveSettings } from '../../providers/oauth2/settings.ts';

describe('a JSON pointer', () => {
  const doc = { id: 7, data: { email: 'a@b.example', 'a/b': 1, 'm~n': 2, list: ['x', 'y'] } };
  it('reads nested members, escaped names and array items, and nothing else', () => {
    expect(readPointer(doc, '/id')).toBe(7);
    expect(readPointer(doc, '/data/email')).toBe('a@b.example');
    expect(readPointer(doc, '/data/a~1b')).toBe(1);
    expect(readPointer(doc, '/data/m~0n')).toBe(2);
    expect(readPointer(doc, '/data/list/1')).toBe('y');
    expect(readPointer(doc, '/data/list/01')).toBeUndefined();
    expect(readPointer(doc, '/data/missing')).toBeUndefined();
    expect(readPointer(doc, '/constructor')).toBeUndefined();
    expect(readPointer(doc, '')).toBe(doc);
  });
});

describe('a subject', () => {
  it('is a non-empty string or a safe integer, never anything else', () => {
    expect(subjectFrom('abc')).toBe('abc');
    expect(subjectFrom(583231)).toBe('583231');
    for (const bad of ['', '  ', 1.5, 2 ** 60, null, undefined, {}, ['x'], true]) expect(subjectFrom(bad), String(bad)).toBeUndefined();
  });
});

describe('an emails list', () => {
  it('gives the primary verified address, else another verified one, else the primary unverified', () => {
    expect(emailFromList([{ email: 'a@x.example', primary: false, verified: true }, { email: 'p@x.example', primary: true, verified: true }])).toEqual({ email: 'p@x.example', verified: true });
    expect(emailFromList([{ email: 'a@x.example', primary: false, verified: true }, { email: 'p@x.example', primary: true, verified: false }])).toEqual({ email: 'a@x.example', verified: true });
    expect(emailFromList([{ email: 'p@x.example', primary: true, verified: false }])).toEqual({ email: 'p@x.example', verified: false });
    expect(emailFromList([])).toBeUndefined();
    expect(emailFromList({ email: 'p@x.example' })).toBeNull();
  });
});

describe("Microsoft's tenant rule", () => {
  const t1 = 'aaaaaaaa-1111-4111-8111-111111111111';
  const t2 = 'bbbbbbbb-2222-4222-8222-222222222222';
  it('builds the expected issuer from the token\'s own tid', () => {
    expect(expectedIssuer(MICROSOFT_ISSUER_TEMPLATE, { tid: t1 })).toBe(`https://login.microsoftonline.com/${t1}/v2.0`);
    expect(expectedIssuer('https://appleid.apple.com', { tid: t1 })).toBe('https://appleid.apple.com');
  });
  it('admits the configured tenant, personal accounts for consumers only, work accounts for organizations, and the allow-list', () => {
    expect(tenantProblem(t1, undefined, { tid: t1 })).toBeUndefined();
    expect(tenantProblem(t1, undefined, { tid: t2 })).toContain('not the configured tenant');
    expect(tenantProblem('consumers', undefined, { tid: MICROSOFT_CONSUMERS_TENANT_ID })).toBeUndefined();
    expect(tenantProblem('consumers', undefined, { tid: t1 })).toContain('personal-accounts');
    expect(tenantProblem('organizations', undefined, { tid: MICROSOFT_CONSUMERS_TENANT_ID })).toContain('personal account');
    expect(tenantProblem('common', [t1], { tid: t1 })).toBeUndefined();
    expect(tenantProblem('common', [t1], { tid: t2 })).toContain('allowed_tenants');
    expect(tenantProblem('common', undefined, {})).toContain('no tid');
  });
});

describe('oauth2 settings', () => {
  it('fill a preset, with generic settings given beside it winning', () => {
    const { settings, problems } = resolveSettings({ preset: 'github', client_id: 'x', authorization_endpoint: 'https://ghe.example/login/oauth/authorize' }, { client_secret: 's' });
    expect(problems).toEqual([]);
    expect(settings).toMatchObject({
      authorization_endpoint: 'https://ghe.example/login/oauth/authorize',
      token_endpoint: 'https://github.com/login/oauth/access_token',
      emails_endpoint: 'https://api.github.com/user/emails',
      subject_pointer: '/id',
      token_endpoint_auth_method: 'client_secret_post',
      issuer: 'https://ghe.example',
    });
    expect(resolveSettings({ preset: 'github', client_id: 'x' }, { client_secret: 's' }).settings!.issuer).toBe('https://github.com');
    const microsoft = resolveSettings({ preset: 'microsoft', client_id: 'x', authorization_endpoint: 'https://127.0.0.1/authorize' }, { client_secret: 's' });
    expect(microsoft.settings!.issuer).toBe('https://login.microsoftonline.com/{tenantid}/v2.0');
  });
  it('refuse a preset\'s own setting with another preset', () => {
    const { problems } = resolveSettings({ preset: 'github', client_id: 'x', hd: 'example.com', tenant: 'common' }, { client_secret: 's' });
    expect(problems.map((p) => p.field).sort()).toEqual(['settings.hd', 'settings.tenant']);
  });
});
