import type { Knex } from 'knex';

/**
 * Where each login session started, for the account page's list of active sessions: the client
 * address the engine saw and the browser's User-Agent (shortened), recorded with the session's
 * row at sign-in. Rows from before this migration have neither.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('login_sessions', (t) => {
    t.text('started_ip');
    t.text('started_user_agent');
  });
}

/** Drops what `up` added. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('login_sessions', (t) => {
    t.dropColumn('started_user_agent');
    t.dropColumn('started_ip');
  });
}
