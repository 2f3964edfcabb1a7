/**
 * The interaction service: the narrow surface every `/interaction/*` page uses. It loads the
 * interaction bound to this browser (the engine's signed interaction cookie must name it), keeps
 * the state machine's state for it in the database, and finishes or aborts it at the engine.
 */
import type { Request, Response } from 'express';
import type { CompletedIdentity } from '../store/login-transactions.ts';
import { RealmgateError } from '../errors.ts';
import type { SignInMethod } from '../accounts/linking.ts';
import type { InteractionStateRepository } from '../store/interaction-states.ts';
import type { RealmgateLoginResult, TokenEngine } from '../token-server/engine.ts';
import { acrOf } from './steps/mfa.ts';

type Details = Awaited<ReturnType<TokenEngine['provider']['interactionDetails']>>;

/** An interaction as oidc-provider describes it. */
export type InteractionDetails = Details;

/** An upstream identity that signed in, waiting to be linked to the account it matched. */
export interface PendingLink {
  alias: string;
  identity: CompletedIdentity;
  /** The account with the identity's email, which the person must prove is theirs. */
  accountId: string;
  accountEmail: string;
  /** The account's sign-in methods when the link was offered (what the page lists). */
  methods: SignInMethod[];
  /** Display names of the providers the page names (the pending one and the account's). */
  displayNames: Record<string, string>;
}

/** The login the machine decided on: the account and how it signed in. */
export interface DecidedLogin {
  accountId: string;
  result: RealmgateLoginResult;
  /** The federated provider asks for a local second factor after it (`require_local_mfa`). */
  requireLocalMfa?: boolean | undefined;
  /** The second factor this login passed here, once it did. */
  secondFactor?: 'otp' | 'recovery' | 'passkey' | undefined;
  /**
   * Set when a signed-in session was taken through this client's steps without a new sign-in:
   * when that session signed in (seconds since the epoch), kept as the login's `auth_time` unless
   * the person passes a second factor here.
   */
  authTime?: number | undefined;
}

/** What the state machine remembers of one interaction between requests. */
export interface MachineState {
  /** Set while link confirmation is pending; single use (taken when the link is made or refused). */
  pendingLink?: PendingLink | undefined;
  /** Set once an account is decided; the remaining steps run for it. */
  login?: DecidedLogin | undefined;
  /** Names of the steps this login has completed. */
  completed?: string[] | undefined;
  /** The person asked to see every way to sign in ("use another way"): no automatic redirect. */
  chooseAnotherWay?: boolean | undefined;
  /** The provider home-realm discovery last sent this browser to on its own (the remembered provider). */
  autoRedirectedTo?: string | undefined;
  /** The pending TOTP factor this login is enrolling (the MFA step under `required`). */
  mfaEnrolment?: string | undefined;
}

/** One interaction loaded for this browser: the engine's view, its client and the machine's state. */
export interface Interaction {
  uid: string;
  details: Details;
  params: Record<string, unknown>;
  prompt: string;
  client: Record<string, unknown>;
  state: MachineState;
  expiresAt: Date;
}

/** Loads, saves and ends interactions; the only way pages reach the engine's interaction API. */
export class InteractionService {
  readonly #engine: TokenEngine;
  readonly #states: InteractionStateRepository<MachineState>;
  /** Interactions loaded without stored state and not saved since: ending them has nothing to delete. */
  readonly #stateless = new WeakSet<Interaction>();

  constructor(deps: { engine: TokenEngine; states: InteractionStateRepository<MachineState> }) {
    this.#engine = deps.engine;
    this.#states = deps.states;
  }

  /**
   * The interaction named by the path, only when this browser's signed interaction cookie names
   * it too: a uid alone (leaked in a link, planted in another browser) loads nothing.
   */
  async load(req: Request, res: Response): Promise<Interaction> {
    // Read with the engine's interaction in one statement; used only once the cookie check below passed.
    const stored = typeof req.params.uid === 'string' ? await this.#states.getWithEngineInteraction(req.params.uid) : undefined;
    let details: Details;
    try {
      details = await this.#engine.provider.interactionDetails(req, res);
      if (details.uid !== req.params.uid) throw new Error('interaction uid does not match the interaction cookie');
    } catch (cause) {
      throw new RealmgateError('interaction_expired', { detail: 'interaction not found, expired or not bound to this browser', cause });
    }
    const client = await this.#engine.provider.Client.find(String(details.params.client_id));
    if (!client) throw new RealmgateError('bad_request', { detail: `client ${String(details.params.client_id)} no longer exists` });
    const interaction: Interaction = {
      uid: details.uid,
      details,
      params: details.params as Record<string, unknown>,
      prompt: details.prompt.name,
      client: client.metadata() as Record<string, unknown>,
      state: stored ?? {},
      expiresAt: new Date(details.exp * 1000),
    };
    if (!stored) this.#stateless.add(interaction);
    return interaction;
  }

  /** Deletes the interaction's stored state, unless it was loaded without any and not saved since. */
  async #forget(interaction: Pick<Interaction, 'uid'>): Promise<void> {
    if (this.#stateless.has(interaction as Interaction)) return;
    await this.#states.delete(interaction.uid);
  }

  /** Stores the interaction's state until the interaction expires. */
  async save(interaction: Interaction): Promise<void> {
    this.#stateless.delete(interaction);
    await this.#states.put(interaction.uid, interaction.state, interaction.expiresAt);
  }

  /**
   * Takes the interaction's pending link out of the store (single use): undefined when another
   * request already took it. The rest of the state is kept.
   */
  async takePendingLink(interaction: Interaction): Promise<PendingLink | undefined> {
    const stored = await this.#states.take(interaction.uid);
    const { pendingLink, ...rest } = stored ?? {};
    interaction.state = rest;
    if (Object.keys(rest).length) await this.save(interaction);
    return pendingLink;
  }

  /** Finishes the login at the engine for the decided account; the application gets its code. */
  async finishLogin(req: Request, res: Response, interaction: Interaction, login: DecidedLogin): Promise<void> {
    await this.#forget(interaction);
    await this.#finish(res, async () => {
      const selectAccount = interaction.prompt === 'select_account' || String(interaction.params.prompt ?? '').split(' ').includes('select_account');
      const grantId = await this.#consentWithoutAsking(interaction, login.accountId);
      return this.#engine.provider.interactionResult(
        req,
        res,
        {
          login: {
            accountId: login.accountId,
            amr: login.result.amr,
            acr: acrOf(login.result.amr),
            remember: true,
            // A session only taken through steps (terms, claims) keeps the time its person signed in.
            ...(login.authTime !== undefined && login.secondFactor === undefined ? { ts: login.authTime } : {}),
          },
          realmgate: login.result,
          ...(selectAccount ? { select_account: {} } : {}),
          ...(grantId ? { consent: { grantId } } : {}),
        },
        { mergeWithLastSubmission: false },
      );
    });
  }

  /**
   * For a client that never asks for consent (`require_consent: false`), grants the scopes the
   * authorization request asked for together with the login, so the engine does not start a
   * second interaction only to grant them. Requests naming resources or individual claims are
   * left to the consent prompt, which grants exactly what the engine finds missing.
   */
  async #consentWithoutAsking(interaction: Interaction, accountId: string): Promise<string | undefined> {
    const { params, client, details } = interaction;
    if (client.require_consent !== false || params.resource !== undefined || params.claims !== undefined) return undefined;
    const { Grant } = this.#engine.provider;
    const clientId = String(params.client_id);
    const existing = details.grantId ? await Grant.find(details.grantId) : undefined;
    const grant = existing && existing.accountId === accountId && existing.clientId === clientId ? existing : new Grant({ accountId, clientId });
    const scope = typeof params.scope === 'string' ? params.scope : '';
    if (scope) grant.addOIDCScope(scope);
    return grant.save();
  }

  /** When the engine session `uid` signed in (its `auth_time`), or undefined when it is gone. */
  async sessionAuthTime(uid: string): Promise<number | undefined> {
    const session = await this.#engine.provider.Session.findByUid(uid);
    const at = session?.authTime();
    return typeof at === 'number' ? at : undefined;
  }

  /**
   * Finishes a non-login prompt (consent) with the result `decide` makes; what it saves (a grant)
   * is held with the interaction's result and sent in the same statement.
   */
  async finishPrompt(req: Request, res: Response, decide: () => Promise<Record<string, unknown>>): Promise<void> {
    await this.#finish(res, async () => this.#engine.provider.interactionResult(req, res, await decide(), { mergeWithLastSubmission: true }));
  }

  /** Ends the interaction with an OAuth error for the application (`access_denied` when the person cancelled). */
  async abort(req: Request, res: Response, interaction: Pick<Interaction, 'uid'>, error: string, description: string): Promise<void> {
    await this.#forget(interaction);
    await this.#finish(res, () => this.#engine.provider.interactionResult(req, res, { error, error_description: description }, { mergeWithLastSubmission: false }));
  }

  /**
   * Runs `record` (the engine's writes that finish an interaction: its result, a grant) with the
   * writes held and sent together, then sends the browser back to the engine, as oidc-provider's
   * `interactionFinished` does, only once they are stored.
   */
  async #finish(res: Response, record: () => Promise<string>): Promise<void> {
    const returnTo = await this.#engine.holdWrites(record);
    res.statusCode = 303;
    res.setHeader('Location', returnTo);
    res.setHeader('Content-Length', '0');
    res.end();
  }
}
