/**
 * Microsoft identity platform (Entra ID): the issuer of an ID token depends on the tenant the
 * person belongs to (`https://login.microsoftonline.com/{tid}/v2.0`), so the expected issuer is
 * built from the token's own `tid`, and that `tid` must be one the provider admits: the one
 * tenant configured, personal accounts for `consumers`, work accounts for `organizations`, and
 * when `allowed_tenants` is set, only those.
 */
import { MICROSOFT_CONSUMERS_TENANT_ID, MICROSOFT_MULTI_TENANTS } from './presets.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The issuer an ID token must carry: `template` with `{tenantid}` replaced by the token's `tid`. */
export function expectedIssuer(template: string, claims: Record<string, unknown>): string {
  return template.includes('{tenantid}') && typeof claims.tid === 'string' ? template.replace('{tenantid}', claims.tid) : template;
}

/** Why the token's tenant is refused, or undefined when `tenant` and `allowedTenants` admit it. */
export function tenantProblem(tenant: string, allowedTenants: readonly string[] | undefined, claims: Record<string, unknown>): string | undefined {
  const tid = claims.tid;
  if (typeof tid !== 'string' || !GUID.test(tid)) return 'the ID token has no tid';
  const multi = (MICROSOFT_MULTI_TENANTS as readonly string[]).includes(tenant);
  if (!multi && GUID.test(tenant) && tid.toLowerCase() !== tenant.toLowerCase()) return `tid ${tid} is not the configured tenant ${tenant}`;
  if (tenant === 'consumers' && tid !== MICROSOFT_CONSUMERS_TENANT_ID) return `tid ${tid} is not the personal-accounts tenant`;
  if (tenant === 'organizations' && tid === MICROSOFT_CONSUMERS_TENANT_ID) return 'a personal account signed in where only work accounts may';
  if (allowedTenants && !allowedTenants.some((t) => t.toLowerCase() === tid.toLowerCase())) return `tid ${tid} is not in allowed_tenants`;
  return undefined;
}
