import { z } from 'zod';
import { DEFAULT_LINKING_POLICY, type EmailTrust, type LinkingRule, type ProviderKind, type ProviderType, type ProvisioningRule, type StoredProvider } from '../../providers/types.ts';
import type { ProviderInput, ProviderRecord } from '../store/providers.ts';
import { isJsonObject } from './merge-patch.ts';
import { type FieldProblem, zodProblems } from './problems.ts';

/** A provider alias: lowercase letters, digits, `-` and `_`, starting with a letter or digit; it is in URLs and permanent. */
export const ALIAS_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** An email domain a provider claims, lowercase, with at least one dot. */
const DOMAIN_PATTERN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The values of the linking policy fields, in the order the OpenAPI document lists them. */
export const EMAIL_TRUST_VALUES = ['domains', 'any', 'none'] as const satisfies readonly EmailTrust[];
export const LINKING_VALUES = ['confirm', 'trusted_email', 'none'] as const satisfies readonly LinkingRule[];
export const PROVISIONING_VALUES = ['auto', 'existing_only'] as const satisfies readonly ProvisioningRule[];

const oneOf = <T extends string>(values: readonly [T, ...T[]]) => z.enum(values, { error: `must be one of: ${values.map((v) => `"${v}"`).join(', ')}` });

/**
 * Most email domains one provider may own. Home-realm discovery reads every enabled provider's
 * domains, so the list stays small enough to load per login; an organisation with more domains
 * than this is better served by several providers or a catch-all rule in the IdP.
 */
export const MAX_DOMAINS_PER_PROVIDER = 1000;

/** Read-only fields of the provider representation; ignored on write so a read can be sent back. */
const READ_ONLY = ['version', 'secrets_set', 'status'] as const;

/** The provider representation of the admin API (snake_case, no secret values). */
export interface ProviderJson {
  alias: string;
  kind: ProviderKind;
  display_name: string;
  enabled: boolean;
  domains: string[];
  settings: Record<string, unknown>;
  claim_mappings: Record<string, string>;
  email_trust: EmailTrust;
  linking: LinkingRule;
  provisioning: ProvisioningRule;
  require_local_mfa: boolean;
  version: number;
  secrets_set: string[];
  /** Operational state written by the node (metadata refresh, certificate expiry); read-only. */
  status: Record<string, unknown>;
}

/** A stored provider as the admin API shows it. */
export function providerJson(record: ProviderRecord): ProviderJson {
  return {
    alias: record.alias,
    kind: record.kind,
    display_name: record.displayName,
    enabled: record.enabled,
    domains: record.domains,
    settings: record.settings,
    claim_mappings: record.claimMappings,
    email_trust: record.linkingPolicy.emailTrust,
    linking: record.linkingPolicy.linking,
    provisioning: record.linkingPolicy.provisioning,
    require_local_mfa: record.requireLocalMfa ?? false,
    version: record.version,
    secrets_set: record.secretsSet,
    status: record.status,
  };
}

const providerBody = z.strictObject({
  alias: z.string({ error: 'is required' }).regex(ALIAS_PATTERN, 'must be 1 to 63 characters: lowercase letters, digits, "-" or "_", starting with a letter or digit'),
  kind: z.string({ error: 'is required' }),
  display_name: z.string({ error: 'is required' }).trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  enabled: z.boolean({ error: 'must be true or false' }).default(true),
  domains: z
    .array(z.string({ error: 'must be a domain name' }).toLowerCase().regex(DOMAIN_PATTERN, 'must be a domain name such as example.com'), { error: 'must be an array of domain names' })
    .max(MAX_DOMAINS_PER_PROVIDER, `must list at most ${MAX_DOMAINS_PER_PROVIDER} domains`)
    .default([])
    .superRefine((domains, ctx) => {
      // One pass with a set: an indexOf per domain made 20,000 domains take seconds.
      const seen = new Set<string>();
      domains.forEach((d, i) => {
        if (seen.has(d)) ctx.addIssue({ code: 'custom', path: [i], message: `repeats "${d}"` });
        seen.add(d);
      });
    }),
  settings: z.record(z.string(), z.unknown(), { error: 'must be an object' }).default({}),
  email_trust: oneOf(EMAIL_TRUST_VALUES).default(DEFAULT_LINKING_POLICY.emailTrust),
  linking: oneOf(LINKING_VALUES).default(DEFAULT_LINKING_POLICY.linking),
  provisioning: oneOf(PROVISIONING_VALUES).default(DEFAULT_LINKING_POLICY.provisioning),
  require_local_mfa: z.boolean({ error: 'must be true or false' }).default(false),
  secrets: z.record(z.string(), z.string({ error: 'must be a string, or null to remove it' }).min(1, 'must not be empty').nullable(), { error: 'must be an object of secret values' }).optional(),
  claim_mappings: z
    .record(z.string().min(1, 'names must not be empty'), z.string({ error: 'must be a claim name' }).min(1, 'must not be empty'), { error: 'must be an object of claim names' })
    .default({}),
});

/**
 * Validates a full provider body: the common fields here, the kind's settings and secrets through
 * `types[kind]` (`prepare` first, so generated values such as a SAML SP key pair are checked and
 * stored too, then `check`). `existing` is the stored provider on update: the kind checks the
 * secrets it will really have. Reports every problem at once.
 */
export async function parseProviderBody(
  body: unknown,
  types: Readonly<Partial<Record<ProviderKind, ProviderType>>>,
  existing?: StoredProvider,
): Promise<{ input?: ProviderInput; problems: FieldProblem[] }> {
  if (!isJsonObject(body)) return { problems: [{ field: '(body)', message: 'must be a JSON object' }] };
  const cleaned = Object.fromEntries(Object.entries(body).filter(([key]) => !(READ_ONLY as readonly string[]).includes(key)));
  const parsed = providerBody.safeParse(cleaned);
  const problems = parsed.success ? [] : zodProblems(parsed.error);

  const kinds = Object.keys(types) as ProviderKind[];
  const kind = typeof body.kind === 'string' && (kinds as string[]).includes(body.kind) ? (body.kind as ProviderKind) : undefined;
  if (typeof body.kind === 'string' && !kind) problems.push({ field: 'kind', message: `must be one of: ${kinds.join(', ')}` });
  if (!kind) return { problems };

  const type = types[kind]!;
  const given = isJsonObject(body.secrets) ? body.secrets : {};
  const secretChanges: Record<string, string | null> = {};
  const secrets = { ...existing?.secrets };
  for (const [name, value] of Object.entries(given)) {
    if (!type.secretNames.includes(name)) {
      problems.push({ field: `secrets.${name}`, message: `is not a secret of ${kind} providers (${type.secretNames.join(', ') || 'none'})` });
    } else if (value === null) {
      delete secrets[name];
      secretChanges[name] = null;
    } else if (typeof value === 'string') {
      secrets[name] = value;
      secretChanges[name] = value;
    }
  }
  const givenSettings = body.settings === undefined ? {} : body.settings;
  if (!isJsonObject(givenSettings)) return { problems };
  let settings: Record<string, unknown> = givenSettings;
  if (type.prepare && typeof body.alias === 'string') {
    try {
      const prepared = await type.prepare({ alias: body.alias, settings, secrets }, existing);
      settings = { ...settings, ...prepared.settings };
      Object.assign(secrets, prepared.secrets);
      Object.assign(secretChanges, prepared.secrets);
    } catch (error) {
      problems.push({ field: 'settings', message: `could not be prepared for a ${kind} provider: ${(error as Error).message}` });
      return { problems };
    }
  }
  const known = new Set(problems.map((p) => `${p.field}|${p.message}`));
  for (const problem of type.check(settings, secrets)) {
    if (!known.has(`${problem.field}|${problem.message}`)) problems.push(problem);
  }

  if (problems.length || !parsed.success) return { problems };
  const d = parsed.data;
  // A field the request leaves out takes the kind's default for these settings (an oauth2 preset's email_trust).
  const kindDefaults = type.defaultLinkingPolicy?.(settings) ?? {};
  const emailTrust = body.email_trust === undefined ? (kindDefaults.emailTrust ?? d.email_trust) : d.email_trust;
  return {
    problems,
    input: {
      alias: d.alias,
      kind,
      displayName: d.display_name,
      enabled: d.enabled,
      domains: d.domains,
      settings,
      secrets: Object.keys(secretChanges).length ? secretChanges : undefined,
      claimMappings: d.claim_mappings,
      linkingPolicy: { emailTrust, linking: d.linking, provisioning: d.provisioning },
      requireLocalMfa: d.require_local_mfa,
    },
  };
}
