import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Realmgate's Prometheus metrics, one registry per server instance. */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  tokensIssued: Counter<'grant_type'>;
  logins: Counter<'idp' | 'outcome'>;
  /** Back-channel logout attempts by application and outcome (`delivered`, `retry`, `failed`). */
  logoutDeliveries: Counter<'client_id' | 'outcome'>;
  /** Deliveries in the logout outbox waiting to be sent or retried (every node's view of the shared outbox). */
  logoutDeliveriesPending: Gauge;
}

/**
 * prom-client's default metrics under their standard names (`process_cpu_seconds_total`,
 * `nodejs_heap_size_used_bytes`, …), which stock Node.js dashboards read, less the gauges named
 * `*_total` (`nodejs_active_handles_total`, …): Prometheus keeps that suffix for counters, and
 * `promtool check metrics` refuses them. Their per-type gauges (`nodejs_active_handles{type}`) stay.
 */
function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const metric of registry.getMetricsAsArray()) {
    if (metric instanceof Gauge && metric.name.endsWith('_total')) registry.removeSingleMetric(metric.name);
  }
}

/** Creates the registry with the process metrics and Realmgate's own counters. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectProcessMetrics(registry);
  return {
    registry,
    httpRequests: new Counter({
      name: 'realmgate_http_requests_total',
      help: 'HTTP requests by method, route and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'realmgate_http_request_duration_seconds',
      help: 'HTTP request duration by method and route',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    tokensIssued: new Counter({
      name: 'realmgate_tokens_issued_total',
      help: 'Token endpoint successes by grant type',
      labelNames: ['grant_type'],
      registers: [registry],
    }),
    logins: new Counter({
      name: 'realmgate_logins_total',
      help: 'Sign-in attempts by identity provider (local for passwords) and outcome',
      labelNames: ['idp', 'outcome'],
      registers: [registry],
    }),
    logoutDeliveries: new Counter({
      name: 'realmgate_logout_deliveries_total',
      help: 'Back-channel logout delivery attempts by client_id and outcome (delivered, retry, failed)',
      labelNames: ['client_id', 'outcome'],
      registers: [registry],
    }),
    logoutDeliveriesPending: new Gauge({
      name: 'realmgate_logout_deliveries_pending',
      help: 'Back-channel logout deliveries waiting to be sent or retried',
      registers: [registry],
    }),
  };
}
