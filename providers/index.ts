/** The registry of upstream protocols: one provider type per kind. */
import { oauth2ProviderType } from './oauth2.ts';
import { oidcProviderType } from './oidc.ts';
import { samlProviderType } from './saml.ts';
import type { ProviderKind, ProviderType } from './types.ts';

/** Every provider type by kind. */
export const providerTypes = {
  oidc: oidcProviderType,
  saml: samlProviderType,
  oauth2: oauth2ProviderType,
} satisfies Record<ProviderKind, ProviderType>;

/** The provider type of a kind, or undefined for a kind this build does not speak. */
export function providerTypeFor(kind: string): ProviderType | undefined {
  return Object.hasOwn(providerTypes, kind) ? (providerTypes as Partial<Record<string, ProviderType>>)[kind] : undefined;
}
