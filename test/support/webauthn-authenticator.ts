/**
 * A software authenticator for tests: it makes real WebAuthn objects the way a browser and an
 * authenticator would (attestation objects with fmt "none", assertions signed with an ES256 key
 * from node:crypto, CBOR and COSE written by hand), so the server's verification runs for real.
 * Overrides make the answers a test needs to see refused: another origin, another RP ID hash, a
 * counter of the test's choosing, user verification left out.
 */
import crypto from 'node:crypto';

type Cbor = number | string | Uint8Array | Cbor[] | Map<Cbor, Cbor> | { [key: string]: Cbor };

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) return Buffer.from([(major << 5) | 25, length >> 8, length & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(length, 1);
  return b;
}

/** Encodes the CBOR subset WebAuthn objects use (integers, byte and text strings, arrays, maps). */
export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cbor)]);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => crypto.createHash('sha256').update(data).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

/** A credential the authenticator holds. */
export interface HeldCredential {
  id: Buffer;
  privateKey: crypto.KeyObject;
  rpId: string;
  userHandle: string;
  counter: number;
}

/** What a test can change in one answer. */
export interface AnswerOverrides {
  /** The origin the "browser" reports in clientDataJSON. */
  origin?: string;
  /** The RP ID whose hash goes into the authenticator data. */
  rpId?: string;
  /** The signature counter to report (instead of the next one). */
  counter?: number;
  /** Leave the user-verified flag out. */
  userVerified?: boolean;
  /** The challenge to answer instead of the options' one. */
  challenge?: string;
}

interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string };
}

interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
  userVerification?: string;
}

/** A software authenticator for one origin; `synced` makes its credentials backed up (multi-device), `counterless` keeps its counter at 0. */
export class TestAuthenticator {
  readonly credentials: HeldCredential[] = [];
  readonly #origin: string;
  readonly #synced: boolean;
  readonly #counterless: boolean;

  constructor(origin: string, options: { synced?: boolean; counterless?: boolean } = {}) {
    this.#origin = origin;
    this.#synced = options.synced ?? false;
    this.#counterless = options.counterless ?? false;
  }

  #flags(extra: number, overrides: AnswerOverrides): Buffer {
    let flags = FLAG_UP | extra;
    if (overrides.userVerified !== false) flags |= FLAG_UV;
    if (this.#synced) flags |= FLAG_BE | FLAG_BS;
    return Buffer.from([flags]);
  }

  #clientData(type: string, challenge: string, overrides: AnswerOverrides): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge: overrides.challenge ?? challenge, origin: overrides.origin ?? this.#origin, crossOrigin: false }));
  }

  /** Answers `navigator.credentials.create()` options: a new ES256 credential and its "none" attestation. */
  create(options: CreationOptions, overrides: AnswerOverrides = {}) {
    const rpId = options.rp.id ?? new URL(this.#origin).hostname;
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = cbor(new Map<Cbor, Cbor>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]));
    const id = crypto.randomBytes(16);
    const counter = overrides.counter ?? 0;
    const authData = Buffer.concat([
      sha256(overrides.rpId ?? rpId),
      this.#flags(FLAG_AT, overrides),
      Buffer.from([counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff]),
      Buffer.alloc(16),
      Buffer.from([id.length >> 8, id.length & 0xff]),
      id,
      cose,
    ]);
    const attestationObject = cbor({ fmt: 'none', attStmt: new Map(), authData });
    const clientDataJSON = this.#clientData('webauthn.create', options.challenge, overrides);
    this.credentials.push({ id, privateKey, rpId, userHandle: options.user.id, counter });
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['internal'] },
    };
  }

  /** Answers `navigator.credentials.get()` options with a signed assertion of a held credential (the first one allowed, or any for the RP). */
  get(options: RequestOptions, overrides: AnswerOverrides = {}) {
    const rpId = options.rpId ?? new URL(this.#origin).hostname;
    const allowed = new Set((options.allowCredentials ?? []).map((c) => c.id));
    const credential = this.credentials.find((c) => c.rpId === rpId && (allowed.size === 0 || allowed.has(b64url(c.id))));
    if (!credential) throw new Error(`the test authenticator holds no credential for ${rpId}`);
    if (overrides.counter === undefined && !this.#counterless) credential.counter += 1;
    const counter = overrides.counter ?? (this.#counterless ? 0 : credential.counter);
    const authData = Buffer.concat([
      sha256(overrides.rpId ?? rpId),
      this.#flags(0, overrides),
      Buffer.from([counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff]),
    ]);
    const clientDataJSON = this.#clientData('webauthn.get', options.challenge, overrides);
    const signature = crypto.sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.privateKey);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: { clientDataJSON: b64url(clientDataJSON), authenticatorData: b64url(authData), signature: b64url(signature), userHandle: credential.userHandle },
    };
  }
}
