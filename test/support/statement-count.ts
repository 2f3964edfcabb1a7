import type { Knex } from 'knex';
import { QueryCounter, groupStatements, type StatementTally } from '../../src/store/query-counter.ts';
import type { Realmgate } from '../../src/app.ts';
import { federatedLogin, type TestApp } from './federation.ts';
import { passwordLogin } from './login.ts';
import type { UpstreamIdp, UpstreamUser } from './upstream-idp.ts';

/**
 * The statement counter of a node's database with the node's periodic jobs stopped, so that
 * what it counts during a flow is that flow's own statements.
 */
export async function quietCounter(node: Realmgate, db: Knex = node.db): Promise<QueryCounter> {
  await node.jobs.stop();
  return QueryCounter.attach(db);
}

/** Statements of one complete federated login (app → Realmgate → upstream → back → code redeemed). */
export async function countFederatedLogin(
  counter: QueryCounter,
  app: TestApp,
  idp: UpstreamIdp,
  user: Pick<UpstreamUser, 'email' | 'password'>,
  params: Record<string, string>,
): Promise<StatementTally> {
  return counter.during(() => federatedLogin(app, idp, user, { params }));
}

/** Statements of one complete password login on the login page (code redeemed). */
export async function countPasswordLogin(counter: QueryCounter, app: TestApp, email: string, password: string): Promise<StatementTally> {
  return counter.during(() => passwordLogin(app.config, { redirectUri: app.redirectUri, email, password, scope: 'openid email' }));
}

/** How many of a tally's statements are the token engine's own storage (`oidc_payloads`), and how many the gateway's. */
export function splitTally(tally: StatementTally): { engine: number; gateway: number } {
  const engine = tally.statements.filter((s) => /"oidc_payloads"/.test(s.sql)).length;
  return { engine, gateway: tally.count - engine };
}

/** A tally as lines for a failure message: the count, then each distinct statement with how often it ran. */
export function describeTally(tally: StatementTally): string {
  const { engine, gateway } = splitTally(tally);
  return [
    `${tally.count} statements (${engine} token engine storage, ${gateway} gateway)`,
    ...groupStatements(tally.statements).map((s) => `${String(s.times).padStart(3)}× ${s.sql}`),
  ].join('\n');
}
