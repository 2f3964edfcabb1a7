import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { RealmgateError } from '../errors.ts';

const VERSION = 'v1';
const CHECK_KEY = 'master_key_check';
const CHECK_TEXT = 'realmgate master key check';

/**
 * Thrown when sealed data cannot be opened (a wrong key, tampered data) or the master key is
 * unusable. A RealmgateError (`seal_failed`, a 500 that shows nothing) should it reach a request;
 * a subclass because start-up and the CLI print its message to the operator by type.
 */
export class SealError extends RealmgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('seal_failed', { detail: message, cause: options?.cause });
    this.name = 'SealError';
  }
}

/** Seals and opens secrets at rest with AES-256-GCM under the master key. */
export class Sealer {
  readonly #master: Buffer;
  readonly #key: Buffer;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new SealError('the master key must be 32 bytes');
    this.#master = masterKey;
    this.#key = this.deriveKey('seal v1');
  }

  /** Encrypts `plaintext`; the result is `v1.<iv>.<tag>.<ciphertext>` in base64url. */
  seal(plaintext: string): string {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.#key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, cipher.getAuthTag(), ciphertext].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** Decrypts what `seal` produced; throws `SealError` for a wrong key or tampered data. */
  open(sealed: string): string {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || ciphertext === undefined) throw new SealError('sealed value is malformed');
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new SealError('sealed value cannot be opened with this master key', { cause });
    }
  }

  /** Derives a purpose-bound key (cookie signing, CSRF) from the master key. */
  deriveKey(purpose: string, length = 32): Buffer {
    return Buffer.from(crypto.hkdfSync('sha256', this.#master, Buffer.alloc(0), `realmgate ${purpose}`, length));
  }
}

/**
 * Returns the master key: from config, or in embedded mode from `<dataDir>/master.key`,
 * generated there on first start.
 */
export function resolveMasterKey(config: { masterKey: string | undefined; databaseUrl: string | undefined; dataDir: string }): Buffer {
  if (config.masterKey) return Buffer.from(config.masterKey, 'base64');
  if (config.databaseUrl) throw new SealError('REALMGATE_MASTER_KEY is required with DATABASE_URL');
  const file = path.join(config.dataDir, 'master.key');
  fs.mkdirSync(config.dataDir, { recursive: true });
  try {
    fs.writeFileSync(file, crypto.randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new SealError(`${file} does not hold a 32-byte base64 key`);
  return key;
}

/**
 * Makes sure the master key is the one this database was sealed with: the first start stores a
 * sealed check value, every later start must be able to open it.
 */
export async function verifyMasterKey(db: Knex, sealer: Sealer): Promise<void> {
  const row = await db('realmgate_meta').where({ key: CHECK_KEY }).first<{ value: string } | undefined>();
  if (!row) {
    await db('realmgate_meta').insert({ key: CHECK_KEY, value: sealer.seal(CHECK_TEXT) }).onConflict('key').ignore();
    return verifyMasterKey(db, sealer);
  }
  let opened: string;
  try {
    opened = sealer.open(row.value);
  } catch (cause) {
    throw new SealError(
      'REALMGATE_MASTER_KEY does not match the key this database was sealed with. Use the same key on every node that shares the database.',
      { cause },
    );
  }
  if (opened !== CHECK_TEXT) throw new SealError('the master key check value in the database is corrupt');
}
