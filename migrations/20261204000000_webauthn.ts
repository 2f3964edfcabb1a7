import type { Knex } from 'knex';

/**
 * WebAuthn / passkeys. A passkey is a second factor like a TOTP app, so it is a row of
 * `mfa_factors` with `kind = 'webauthn'` (no sealed secret: a public key is not secret) and its
 * credential: `credential_id` (base64url, unique across accounts), `public_key` (COSE, base64url),
 * `sign_count` (a regressing non-zero counter is refused), `transports` (JSON array the
 * authenticator reported), `backed_up` and `device_type` (`singleDevice` | `multiDevice`: `hwk`
 * or `swk` in `amr`). `webauthn_challenges` holds the challenges handed to browsers, each bound to
 * what asked for it (an interaction uid, or the signed-in account page's session) and taken once.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('mfa_factors', (t) => {
    t.text('sealed_secret').nullable().alter();
    t.text('credential_id').unique();
    t.text('public_key');
    t.bigInteger('sign_count');
    t.text('transports');
    t.boolean('backed_up');
    t.text('device_type');
  });
  await knex.schema.createTable('webauthn_challenges', (t) => {
    t.text('challenge').primary();
    t.text('purpose').notNullable();
    t.text('bound_to').notNullable();
    t.uuid('account_id').references('id').inTable('accounts').onDelete('CASCADE');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });
}

/** Drops what `up` created (passkey factors first: their rows have no secret). */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('webauthn_challenges');
  await knex('mfa_factors').where({ kind: 'webauthn' }).delete();
  await knex.schema.alterTable('mfa_factors', (t) => {
    t.dropColumns('credential_id', 'public_key', 'sign_count', 'transports', 'backed_up', 'device_type');
    t.text('sealed_secret').notNullable().alter();
  });
}
