import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Sealer } from './seal.ts';

/** Algorithms Realmgate signs with; one current key each. */
export const SIGNING_ALGORITHMS = ['ES256', 'RS256'] as const;

interface KeyRow {
  kid: string;
  alg: string;
  sealed_jwk: string;
  created_at: Date;
  retired_at: Date | null;
  remove_after: Date | null;
}

/** A snapshot of the signing keys: private JWKs for the engine, newest first, and a fingerprint. */
export interface KeySet {
  keys: JWK[];
  fingerprint: string;
}

/** Identifies a key set: which keys, and which of them are current. */
const fingerprintOf = (rows: Pick<KeyRow, 'kid' | 'retired_at'>[]) => rows.map((r) => `${r.kid}:${r.retired_at ? 'r' : 'c'}`).join(',');

async function newKey(alg: string): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const kid = crypto.randomBytes(12).toString('base64url');
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, privateJwk, publicJwk };
}

/** Signing keys stored sealed in the database, shared by every node. */
export class SigningKeyStore {
  readonly #db: Knex;
  readonly #sealer: Sealer;
  readonly #retentionSeconds: number;

  /** `retentionSeconds`: how long a retired key stays published, at least the longest signed-token lifetime. */
  constructor(db: Knex, sealer: Sealer, options: { retentionSeconds: number }) {
    this.#db = db;
    this.#sealer = sealer;
    this.#retentionSeconds = options.retentionSeconds;
  }

  /** Creates a current key for every algorithm that has none; safe to run on many nodes at once. */
  async ensureKeys(): Promise<void> {
    await this.#db.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [0x5245414c]);
      const current = await trx('signing_keys').whereNull('retired_at').pluck<string[]>('alg');
      for (const alg of SIGNING_ALGORITHMS) {
        if (!current.includes(alg)) await this.#insert(trx, alg);
      }
    });
  }

  /** Adds a new current key per algorithm and retires the previous ones (still published until `remove_after`). */
  async rotate(): Promise<string[]> {
    return this.#db.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [0x5245414c]);
      const removeAfter = new Date(Date.now() + this.#retentionSeconds * 1000);
      await trx('signing_keys').whereNull('retired_at').update({ retired_at: trx.fn.now(), remove_after: removeAfter });
      const kids: string[] = [];
      for (const alg of SIGNING_ALGORITHMS) kids.push(await this.#insert(trx, alg));
      return kids;
    });
  }

  /** The keys to publish and sign with: current keys sign, retired ones only verify. */
  async load(): Promise<KeySet> {
    const rows = await this.#published().select<KeyRow[]>();
    const keys = rows.map((row) => {
      const jwk = JSON.parse(this.#sealer.open(row.sealed_jwk)) as JWK;
      return row.retired_at ? { ...jwk, key_ops: ['verify'] } : jwk;
    });
    return { keys, fingerprint: fingerprintOf(rows) };
  }

  /** Just the fingerprint of the published key set, to notice rotations cheaply. */
  async fingerprint(): Promise<string> {
    return fingerprintOf(await this.#published().select<Pick<KeyRow, 'kid' | 'retired_at'>[]>('kid', 'retired_at'));
  }

  /** Keys still published, current ones first, newest first. */
  #published(): Knex.QueryBuilder {
    return this.#db('signing_keys')
      .where((q) => q.whereNull('remove_after').orWhere('remove_after', '>', this.#db.fn.now()))
      .orderBy([{ column: 'retired_at', order: 'desc', nulls: 'first' }, { column: 'created_at', order: 'desc' }]);
  }

  /** Every stored key, newest first, without its private part: what `keys list` shows. */
  async list(): Promise<{ kid: string; alg: string; createdAt: Date; retiredAt: Date | null; removeAfter: Date | null }[]> {
    const rows = await this.#db('signing_keys')
      .orderBy('created_at', 'desc')
      .select<{ kid: string; alg: string; created_at: Date; retired_at: Date | null; remove_after: Date | null }[]>('kid', 'alg', 'created_at', 'retired_at', 'remove_after');
    return rows.map((r) => ({ kid: r.kid, alg: r.alg, createdAt: r.created_at, retiredAt: r.retired_at, removeAfter: r.remove_after }));
  }

  /** Deletes retired keys past `remove_after`. */
  async purgeRemoved(): Promise<number> {
    return this.#db('signing_keys').where('remove_after', '<', this.#db.fn.now()).delete();
  }

  async #insert(trx: Knex, alg: string): Promise<string> {
    const { kid, privateJwk, publicJwk } = await newKey(alg);
    await trx('signing_keys').insert({
      kid,
      alg,
      sealed_jwk: this.#sealer.seal(JSON.stringify(privateJwk)),
      public_jwk: JSON.stringify(publicJwk),
    });
    return kid;
  }
}
