import type { Request, Response } from 'express';
import type { Account, NewAccount } from '../../store/accounts.ts';
import { RealmgateError } from '../../errors.ts';
import type { InteractionStep, MachineDeps } from '../machine.ts';
import type { Interaction } from '../service.ts';
import { missingClaims, PROFILE_CLAIMS, type ProfileClaimName } from './profile-claims.ts';

/** The account the login decided on; gone (deleted meanwhile) ends the interaction. */
async function decidedAccount(deps: MachineDeps, interaction: Interaction): Promise<Account> {
  const account = await deps.accounts.get(interaction.state.login!.accountId);
  if (!account || account.disabled) throw new RealmgateError('interaction_expired', { detail: 'the account of this login was deleted or disabled' });
  return account;
}

/** Renders the form for `claims`, with the typed `values` and a sentence per invalid field. */
function renderForm(
  deps: MachineDeps,
  res: Response,
  interaction: Interaction,
  claims: ProfileClaimName[],
  values: Partial<Record<ProfileClaimName, string>> = {},
  problems: Partial<Record<ProfileClaimName, string>> = {},
): void {
  const invalid = Object.keys(problems).length > 0;
  res
    .status(invalid ? 400 : 200)
    .type('html')
    .set('cache-control', 'no-store')
    .send(
      deps.views.render('profile.njk', {
        uid: interaction.uid,
        csrf: deps.csrf.issue(interaction.uid),
        client_name: interaction.client.client_name ?? interaction.client.client_id,
        fields: claims.map((name) => ({ name, ...PROFILE_CLAIMS[name], value: values[name] ?? '', error: problems[name] })),
        error: invalid ? 'Some details need your attention.' : undefined,
      }),
    );
}

/**
 * Profile completion: a client with `required_claims` gets them for every person signing in. A
 * person whose account lacks some (typically on first arrival from a provider that did not send
 * them) is asked for those once, with one input named by each claim; the values are checked,
 * stored on the account (audited) and released in tokens like any other claim of the account.
 */
export const profileStep: InteractionStep = {
  name: 'profile_completion',
  async pending(deps, interaction) {
    if (!interaction.state.login) return false;
    // A client that requires no claims costs no query.
    const required = interaction.client.required_claims;
    if (!Array.isArray(required) || required.length === 0) return false;
    return missingClaims(interaction.client, await decidedAccount(deps, interaction)).length > 0;
  },
  async render(deps: MachineDeps, res: Response, interaction: Interaction) {
    renderForm(deps, res, interaction, missingClaims(interaction.client, await decidedAccount(deps, interaction)));
  },
  submit: {
    path: 'profile',
    async handle(deps: MachineDeps, req: Request, res: Response, interaction: Interaction) {
      const account = await decidedAccount(deps, interaction);
      const claims = missingClaims(interaction.client, account);
      const body = req.body as Record<string, unknown>;
      const values: Partial<Record<ProfileClaimName, string>> = {};
      const problems: Partial<Record<ProfileClaimName, string>> = {};
      let changes: NewAccount = {};
      for (const name of claims) {
        const typed = typeof body[name] === 'string' ? (body[name] as string).slice(0, 1000) : '';
        values[name] = typed;
        const checked = PROFILE_CLAIMS[name].check(typed);
        if ('problem' in checked) problems[name] = checked.problem;
        else changes = { ...changes, ...PROFILE_CLAIMS[name].write({ ...account, claims: { ...account.claims, ...changes.claims } }, checked.value) };
      }
      if (Object.keys(problems).length) {
        deps.logger.warn({ uid: interaction.uid, account_id: account.id, invalid: Object.keys(problems) }, 'profile completion refused invalid values');
        renderForm(deps, res, interaction, claims, values, problems);
        return false;
      }
      const before = Object.fromEntries(claims.map((name) => [name, PROFILE_CLAIMS[name].read(account) ?? null]));
      await deps.linking.store.transaction(async (tx) => {
        const updated = await tx.accounts.update(account.id, changes);
        if (!updated) throw new RealmgateError('interaction_expired', { detail: 'the account of this login was deleted during profile completion' });
        const after = Object.fromEntries(claims.map((name) => [name, PROFILE_CLAIMS[name].read(updated) ?? null]));
        await tx.audit.record({
          actor: `account:${account.id}`,
          action: 'complete_profile',
          resourceType: 'user',
          resourceId: account.id,
          before,
          after,
          requestId: (res.locals.requestId as string | undefined) ?? null,
        });
      });
      deps.logger.info({ uid: interaction.uid, account_id: account.id, claims }, 'profile completed');
      return true;
    },
  },
};
