import type { Knex } from 'knex';

/**
 * Progressive delay for failed password sign-ins: `blocked_until` is when the key (an account,
 * or an account from one IP) may try again, set after each failure beyond the allowance.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('login_throttle', (t) => {
    t.timestamp('blocked_until', { useTz: true }).nullable();
  });
}

/** Drops what `up` added. */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('login_throttle', (t) => {
    t.dropColumn('blocked_until');
  });
}
