/**
 * Mail over the operator's SMTP server (`REALMGATE_SMTP_URL`, from `REALMGATE_MAIL_FROM`), with
 * nodemailer. There is no fallback: without a configured server there is no mailer, and the
 * pages that would send mail say so instead of pretending.
 */
import nodemailer from 'nodemailer';
import type { MailSettings } from '../config.ts';
import { RealmgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';

/** One plain-text message to one recipient. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

/** Sends mail; a send that the server did not accept throws `mail_failed`. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

/** How long one send may take, connection included, before it counts as failed. */
const SEND_TIMEOUT_MS = 15_000;

/** A mailer on the configured SMTP server; the connection is opened per message (no pool to go stale). */
export function createMailer(settings: MailSettings, logger: Logger): Mailer {
  const transport = nodemailer.createTransport(
    { url: settings.smtpUrl, connectionTimeout: SEND_TIMEOUT_MS, greetingTimeout: SEND_TIMEOUT_MS, socketTimeout: SEND_TIMEOUT_MS },
    { from: settings.from },
  );
  const server = new URL(settings.smtpUrl).host;
  return {
    async send(message) {
      try {
        const info = await transport.sendMail({ to: message.to, subject: message.subject, text: message.text });
        logger.info({ smtp: server, message_id: info.messageId, subject: message.subject }, 'mail sent');
      } catch (cause) {
        throw new RealmgateError('mail_failed', {
          detail: `the SMTP server ${server} did not accept the mail: ${(cause as Error).message}`,
          cause,
        });
      }
    },
  };
}
