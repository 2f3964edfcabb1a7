import { describe, expect, it } from 'vitest';
import { checkClaimMappings, mapClaims } from '../../src/accounts/claim-mapping.ts';

describe('mapClaims', () => {
  const upstream = {
    sub: 'u1',
    email: 'ada@example.com',
    email_verified: 'true',
    name: 'Ada Lovelace',
    given_name: 'Ada',
    family_name: 'Lovelace',
    groups: 'engineers',
    mail: 'ada@work.example',
    realm_access: { roles: ['admin', 'user'] },
    department: 'R&D',
  };

  it('maps the standard OpenID Connect claims to themselves by default', () => {
    expect(mapClaims(upstream, {})).toEqual({
      email: 'ada@example.com',
      emailVerified: true,
      name: 'Ada Lovelace',
      givenName: 'Ada',
      familyName: 'Lovelace',
      claims: { groups: ['engineers'] },
    });
  });

  it('lets a mapping replace a default, read nested claims and add custom claims', () => {
    const profile = mapClaims(upstream, { mail: 'email', 'realm_access.roles': 'groups', department: 'department' });
    expect(profile.email).toBe('ada@work.example');
    expect(profile.emailVerified).toBe(true);
    expect(profile.claims).toEqual({ groups: ['admin', 'user'], department: 'R&D' });
  });

  it('never lets a mapping set claims Realmgate owns', () => {
    expect(mapClaims(upstream, { department: 'sub', name: 'idp' }).claims).toEqual({ groups: ['engineers'] });
  });

  it('falls back to the email the provider normalised when no claim carries one', () => {
    expect(mapClaims({ sub: 'x' }, {}, { email: 'n@example.com', emailVerified: true })).toMatchObject({ email: 'n@example.com', emailVerified: true });
    expect(mapClaims({ sub: 'x' }, {})).toMatchObject({ email: null, emailVerified: false, name: null });
  });
});

describe('checkClaimMappings', () => {
  it('accepts a valid mapping and reports every invalid one', () => {
    expect(checkClaimMappings({ mail: 'email', 'realm_access.roles': 'groups' })).toEqual([]);
    expect(checkClaimMappings({ a: 'sub', b: 42, c: 'email', d: 'email' })).toEqual([
      { field: 'claim_mappings.a', message: expect.stringMatching(/Realmgate sets it/) },
      { field: 'claim_mappings.b', message: expect.stringMatching(/local claim name/) },
      { field: 'claim_mappings.d', message: expect.stringMatching(/already does/) },
    ]);
    expect(checkClaimMappings(['email'])).toHaveLength(1);
  });
});
