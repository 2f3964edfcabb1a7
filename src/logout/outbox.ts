/**
 * The logout outbox's vocabulary: the notices an ended session queues for its applications and
 * the deliveries that carry them. The outbox itself is the store's `logout_deliveries`
 * repository (`src/store/logout-deliveries.ts`), written in the transaction that ends a session.
 */
/** Where a delivery stands: waiting (or retrying), acknowledged by the application, or given up on. */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Why the session of a delivery ended. */
/** How a session ended: the application's logout, the upstream's, the admin API, expiry, or its person on the account page. */
export type LogoutReason = 'rp_logout' | 'upstream_logout' | 'admin' | 'expired' | 'account';

/** One application to tell, over its back channel, that one session ended. */
export interface LogoutNotice {
  sessionUid: string;
  clientId: string;
  /** The `sub` of the logout token: the local account id. */
  accountId: string;
  /** The `sid` the application knows the session by. */
  sid: string | undefined;
  reason: LogoutReason;
}

/** A stored delivery with its progress. */
export interface LogoutDelivery extends LogoutNotice {
  id: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  giveUpAt: Date;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt: Date | undefined;
  lastError: string | undefined;
}

/** Filters of `list`. */
export interface DeliveryFilter {
  status?: DeliveryStatus | undefined;
  clientId?: string | undefined;
  sessionUid?: string | undefined;
}

/** The outbox: the store's `logout_deliveries` repository. */
export type { LogoutDeliveryRepository as LogoutOutbox } from '../store/logout-deliveries.ts';
