/** The registry of upstream protocols: one provider type per kind. */
import { oidcProviderType } from './oidc.ts';
import type { ProviderKind, ProviderType } from './types.ts';

/**
 * Every provider type by kind. `saml` joins with one line; once every kind is here the check
 * tightens to `satisfies Record<ProviderKind, ProviderType>`.
 */
export const providerTypes = {
  oidc: oidcProviderType,
} satisfies Partial<Record<ProviderKind, ProviderType>>;

/** The provider type of a kind, or undefined for a kind this build does not speak. */
export function providerTypeFor(kind: string): ProviderType | undefined {
  return Object.hasOwn(providerTypes, kind) ? (providerTypes as Partial<Record<string, ProviderType>>)[kind] : undefined;
}
