/**
 * What the pages that send mail share: their dependencies, the forms' field checks, the link a
 * mail carries, and the plain pages they answer with. Registration and password reset each have
 * their own file; neither keeps anything in process memory (the links live in `email_links`).
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { LogoutOutbox } from '../logout/outbox.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { EmailLinkRepository } from '../store/email-links.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../admin/user-json.ts';
import type { MachineDeps } from './machine.ts';
import type { Interaction } from './service.ts';

/** How long a link in a verification or reset mail works. */
export const MAIL_LINK_TTL_SECONDS = 30 * 60;

/** Links asked for the same address and purpose within this window are not sent again (the same answer is given). */
export const PER_ADDRESS_WINDOW_SECONDS = 60;

/** What registration and password reset need besides the machine's dependencies. */
export interface MailPageDeps extends MachineDeps {
  /** Undefined when `REALMGATE_SMTP_URL` is not set: the pages say mail is not configured. */
  mailer: Mailer | undefined;
  emailLinks: EmailLinkRepository;
  outbox: LogoutOutbox;
  issuer: string;
}

/** The sentence every mail-sending page shows when no SMTP server is configured. */
export const MAIL_NOT_CONFIGURED = 'Email is not set up on this server, so this cannot be done here. Ask the administrator, or sign in another way.';

/** The absolute URL of a mailed link for interaction `uid`. */
export function mailLink(issuer: string, uid: string, path: string, token: string): string {
  return `${issuer}/interaction/${encodeURIComponent(uid)}/${path}?token=${encodeURIComponent(token)}`;
}

/** A field of a form post, trimmed and bounded ('' when absent). */
export function field(req: Request, name: string, max: number, trim = true): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  if (typeof value !== 'string') return '';
  return (trim ? value.trim() : value).slice(0, max);
}

const emailSchema = z.email().max(320);

/** A sentence for an invalid email, or undefined. */
export function emailProblem(email: string): string | undefined {
  if (!email) return 'Enter your email address.';
  return emailSchema.safeParse(email).success ? undefined : 'Enter an email address, like name@example.com.';
}

/** A sentence for an unacceptable new password, or undefined. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH) return `Choose a password of at least ${MIN_PASSWORD_LENGTH} characters.`;
  if (password.length > MAX_PASSWORD_LENGTH) return `Choose a password of at most ${MAX_PASSWORD_LENGTH} characters.`;
  return undefined;
}

/** The client's display name. */
export const clientName = (interaction: Pick<Interaction, 'client'>) => String(interaction.client.client_name ?? interaction.client.client_id);

/** Renders a page of the mail flows, uncached. */
export function sendPage(deps: Pick<MachineDeps, 'views'>, res: Response, status: number, template: string, context: Record<string, unknown>): void {
  res.status(status).type('html').set('cache-control', 'no-store').send(deps.views.render(template, context));
}

/** A short page with a heading, a sentence and, optionally, a link onwards (`[data-continue]`). */
export function noticePage(deps: Pick<MachineDeps, 'views'>, res: Response, status: number, notice: { title: string; message: string; href?: string; linkText?: string }): void {
  sendPage(deps, res, status, 'notice.njk', { title: notice.title, message: notice.message, href: notice.href, link_text: notice.linkText, alert: status >= 400 });
}

/**
 * The interaction this browser is bound to, when it is the one a link was asked for in; undefined
 * when the link is opened elsewhere (another browser, or after the interaction ended).
 */
export async function boundInteraction(deps: Pick<MachineDeps, 'interactions'>, req: Request, res: Response, uid: string): Promise<Interaction | undefined> {
  try {
    const interaction = await deps.interactions.load(req, res);
    return interaction.uid === uid && (interaction.prompt === 'login' || interaction.prompt === 'select_account') ? interaction : undefined;
  } catch {
    return undefined;
  }
}

/** Sends the mail carrying a new link; when the server does not take it, the link is discarded and the error goes on (`mail_failed`). */
export async function sendLink(deps: Pick<MailPageDeps, 'emailLinks'>, mailer: Mailer, token: string, message: Parameters<Mailer['send']>[0]): Promise<void> {
  try {
    await mailer.send(message);
  } catch (error) {
    await deps.emailLinks.discard(token);
    throw error;
  }
}
