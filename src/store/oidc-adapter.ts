import type { Knex } from 'knex';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { ClientRepository } from './clients.ts';
import { currentPayloadBatch, flushPayloadWrites } from './payload-batch.ts';
import { forgetAllInRequest, forgetInRequest, primeInRequest, requestScoped } from './request-scope.ts';

/** A stored payload as the adapter reads it. */
export interface PayloadRow {
  model: string;
  id: string;
  payload: AdapterPayload;
  consumed_at: Date | null;
}

/** A constructor oidc-provider calls once per model name. */
export type AdapterFactory = new (model: string) => Adapter;

/** The payload of a stored row as the engine expects it: `consumed` (seconds) once it was consumed. */
export function payloadOfRow(row: Pick<PayloadRow, 'payload' | 'consumed_at'>): AdapterPayload {
  return row.consumed_at ? { ...row.payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) } : row.payload;
}

/** The request-memo key of a payload found by id. */
export function payloadKey(model: string, id: string): string {
  return `payload:${model}:${id}`;
}

/** The request-memo key of a payload found by uid (the engine finds sessions by uid). */
const uidKey = (model: string, uid: string) => `payload-uid:${model}:${uid}`;

/** SQL condition: the row `alias` has not expired. */
const live = (alias: string) => `(${alias}.expires_at is null or ${alias}.expires_at > CURRENT_TIMESTAMP)`;

/**
 * Models whose payload names a grant (`grantId`) and a session (`sessionUid`) the engine reads
 * right after it: finding one reads those two in the same statement. An interaction names the
 * grant its consent made (`result.consent.grantId`), which the resume reads.
 */
const GRANT_BEARING = new Set(['AuthorizationCode', 'RefreshToken', 'AccessToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'Interaction']);

/**
 * Builds oidc-provider's adapter on knex: every model in `oidc_payloads`, except `Client`,
 * which reads the `clients` table so client secrets stay sealed at rest.
 *
 * Within one request: a payload found by id is read once (the engine looks an interaction up
 * twice to finish it); finding a code, token or interaction also reads the grant and session it
 * names, which the engine asks for next; and inside a payload batch (`holdPayloadWrites`, around
 * every engine request) writes are held and sent together at the end, reads answered from what
 * is held. Any write forgets what the memo knew of the payload.
 */
export function knexAdapter(db: Knex, clients: Pick<ClientRepository, 'findForEngine'>): AdapterFactory {
  return class KnexAdapter implements Adapter {
    readonly #model: string;

    constructor(model: string) {
      this.#model = model;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.#model === 'Client') throw new Error('clients are managed through the admin API and CLI');
      this.#forget(id);
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      const batch = currentPayloadBatch();
      if (batch) return batch.upsert(this.#model, id, payload, expiresAt);
      await db('oidc_payloads')
        .insert({
          model: this.#model,
          id,
          payload: JSON.stringify(payload),
          grant_id: payload.grantId ?? null,
          user_code: payload.userCode ?? null,
          uid: payload.uid ?? null,
          expires_at: expiresAt,
        })
        .onConflict(['model', 'id'])
        .merge();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.#model === 'Client') return clients.findForEngine(id);
      const held = await currentPayloadBatch()?.state(this.#model, id);
      if (held?.known) return held.payload;
      const found = await requestScoped(payloadKey(this.#model, id), () => this.#findById(id));
      if (!found) return undefined;
      // Each caller gets its own copy: the engine builds mutable models from it.
      const copy = structuredClone(found);
      return held?.consumed ? { ...copy, consumed: copy.consumed ?? Math.floor(Date.now() / 1000) } : copy;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.#findBy('user_code', userCode, (p) => p.userCode === userCode);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.#findBy('uid', uid, (p) => p.uid === uid);
    }

    /**
     * Marks a code, refresh token or pushed request used, at once and only if nobody has: of two
     * requests redeeming the same one at the same moment (both found it unused), exactly one goes
     * on. The other is refused as a replay, and the grant revoked with everything issued under
     * it, as oidc-provider does when it sees a replay itself. A payload saved earlier in this same
     * batch is not in the database yet: its consume is held with its save.
     */
    async consume(id: string): Promise<void> {
      this.#forget(id);
      const batch = currentPayloadBatch();
      if (batch?.overrides(this.#model, id)) return batch.consume(this.#model, id);
      const [row] = (
        await db.raw<{ rows: { won: boolean; grant_id: string | null }[] }>(
          `with used as (update "oidc_payloads" set consumed_at = CURRENT_TIMESTAMP where model = ? and id = ? and consumed_at is null returning 1)
           select exists (select 1 from used) as won, (select grant_id from "oidc_payloads" where model = ? and id = ?) as grant_id`,
          [this.#model, id, this.#model, id],
        )
      ).rows;
      if (row?.won) return;
      if (row?.grant_id) {
        await this.revokeByGrantId(row.grant_id);
        await db('oidc_payloads').where({ model: 'Grant', id: row.grant_id }).delete();
      }
      // Loaded here, not with the module: the CLI opens the store without the token engine.
      const { errors } = await import('oidc-provider');
      throw this.#model === 'PushedAuthorizationRequest'
        ? new errors.InvalidRequest('request_uri was already used')
        : new errors.InvalidGrant(`${this.#model === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
    }

    async destroy(id: string): Promise<void> {
      this.#forget(id);
      const batch = currentPayloadBatch();
      if (batch) return batch.destroy(this.#model, id);
      await db('oidc_payloads').where({ model: this.#model, id }).delete();
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      // Held saves of this grant's tokens land first, so the delete reaches them too.
      await flushPayloadWrites();
      forgetAllInRequest('payload:');
      forgetAllInRequest('payload-uid:');
      await db('oidc_payloads').where({ grant_id: grantId }).delete();
    }

    #forget(id: string): void {
      forgetInRequest(payloadKey(this.#model, id));
      forgetAllInRequest(uidKey(this.#model, ''));
    }

    /** The payload `id` and, for a grant-bearing model, the grant and session it names, in one statement. */
    async #findById(id: string): Promise<AdapterPayload | undefined> {
      if (!GRANT_BEARING.has(this.#model)) {
        const row = await db('oidc_payloads as p')
          .select('p.model', 'p.id', 'p.payload', 'p.consumed_at')
          .where({ 'p.model': this.#model, 'p.id': id })
          .whereRaw(live('p'))
          .first<PayloadRow | undefined>();
        return row && payloadOfRow(row);
      }
      const grantId = "coalesce(t.payload->>'grantId', t.payload#>>'{result,consent,grantId}')";
      const { rows } = await db.raw<{ rows: (PayloadRow & { related: boolean })[] }>(
        `select t.model, t.id, t.payload, t.consumed_at, false as related from "oidc_payloads" t where t.model = ? and t.id = ? and ${live('t')}
         union all
         select r.model, r.id, r.payload, r.consumed_at, true as related from "oidc_payloads" t join "oidc_payloads" r
           on (r.model = 'Grant' and r.id = ${grantId}) or (r.model = 'Session' and r.uid = t.payload->>'sessionUid')
         where t.model = ? and t.id = ? and ${live('t')} and ${live('r')}`,
        [this.#model, id, this.#model, id],
      );
      const target = rows.find((row) => !row.related);
      if (!target) return undefined;
      primeRelated(target.payload, rows.filter((row) => row.related));
      return payloadOfRow(target);
    }

    /** A payload found by a secondary column: held saves first, then the database unless a held write supersedes its row. */
    async #findBy(column: 'uid' | 'user_code', value: string, matches: (payload: AdapterPayload) => boolean): Promise<AdapterPayload | undefined> {
      const batch = currentPayloadBatch();
      const held = await batch?.find(this.#model, matches);
      if (held) return held;
      const load = async () => {
        const row = await db('oidc_payloads as p')
          .select('p.model', 'p.id', 'p.payload', 'p.consumed_at')
          .where({ 'p.model': this.#model, [`p.${column}`]: value })
          .whereRaw(live('p'))
          .first<PayloadRow | undefined>();
        return row && { id: row.id, payload: payloadOfRow(row) };
      };
      const found = column === 'uid' ? await requestScoped(uidKey(this.#model, value), load) : await load();
      if (!found || batch?.overrides(this.#model, found.id)) return undefined;
      return structuredClone(found.payload);
    }
  };
}

/**
 * Records in the request memo the grant and session a payload names, as the statement that
 * found it read them (absent ones too: in that statement they did not exist).
 */
function primeRelated(payload: AdapterPayload, related: readonly PayloadRow[]): void {
  const result = (payload as { result?: { consent?: { grantId?: string } } }).result;
  const grantId = payload.grantId ?? result?.consent?.grantId;
  const sessionUid = (payload as { sessionUid?: string }).sessionUid;
  const grant = related.find((row) => row.model === 'Grant');
  const session = related.find((row) => row.model === 'Session');
  if (grantId) primeInRequest(payloadKey('Grant', grantId), grant && payloadOfRow(grant));
  if (sessionUid) {
    primeInRequest(uidKey('Session', sessionUid), session && { id: session.id, payload: payloadOfRow(session) });
    if (session) primeInRequest(payloadKey('Session', session.id), payloadOfRow(session));
  }
}

/**
 * Deletes expired token-engine rows; returns how many went. Sessions are left to the session
 * expiry job, which ends them with their logout notices.
 */
export async function purgeExpiredPayloads(db: Knex): Promise<number> {
  return db('oidc_payloads').where('expires_at', '<', db.fn.now()).whereNot('model', 'Session').delete();
}
