/**
 * Every request Realmgate makes to an upstream provider goes through one `fetch`: the host is
 * resolved and refused when it points at loopback, private, link-local or other special-purpose
 * addresses (unless the operator allows private networks), and each request has a timeout.
 */
import dns from 'node:dns';
import net from 'node:net';
import { UpstreamRequestError, type OpenContext } from '../../providers/types.ts';
import type { Config } from '../config.ts';

/** Address ranges an upstream URL may not resolve to unless private networks are allowed. */
const SPECIAL_PURPOSE: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'], // "this" network
  ['10.0.0.0', 8, 'ipv4'], // private
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['127.0.0.0', 8, 'ipv4'], // loopback
  ['169.254.0.0', 16, 'ipv4'], // link-local, cloud metadata services
  ['172.16.0.0', 12, 'ipv4'], // private
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
  ['192.168.0.0', 16, 'ipv4'], // private
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, broadcast
  ['::', 128, 'ipv6'], // unspecified
  ['::1', 128, 'ipv6'], // loopback
  ['64:ff9b:1::', 48, 'ipv6'], // local-use NAT64
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
  ['ff00::', 8, 'ipv6'], // multicast
];

const blockList = new net.BlockList();
for (const [address, prefix, type] of SPECIAL_PURPOSE) blockList.addSubnet(address, prefix, type);

/** True when `address` (an IP literal) is loopback, private, link-local or otherwise not a public host. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blockList.check(address, 'ipv4');
  if (family !== 6) return true;
  const lower = address.toLowerCase();
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged by their IPv4 address.
  const mapped = /^::(ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return blockList.check(mapped[2]!, 'ipv4');
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hexMapped) {
    const n = (parseInt(hexMapped[1]!, 16) << 16) | parseInt(hexMapped[2]!, 16);
    return blockList.check([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), 'ipv4');
  }
  return blockList.check(lower, 'ipv6');
}

/** Resolves a host name to every address it has (an IP literal resolves to itself). */
export type HostResolver = (hostname: string) => Promise<string[]>;

const systemResolver: HostResolver = async (hostname) =>
  (await dns.promises.lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

/** Options of the guarded fetch. */
export interface UpstreamFetchOptions {
  /** Lets URLs resolve to loopback and private addresses (tests, demos, on-premises IdPs). */
  allowPrivateNetwork: boolean;
  /** Per-request timeout, covering the response body too. */
  timeoutMs: number;
  /** Host resolution; the system resolver by default. */
  resolve?: HostResolver | undefined;
}

/** Refuses a URL whose scheme is not http(s) or whose host resolves to a refused address. */
async function assertAllowed(url: URL, options: UpstreamFetchOptions): Promise<void> {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UpstreamRequestError('blocked', url.href, { detail: `upstream URL scheme ${url.protocol} is not allowed` });
  }
  if (options.allowPrivateNetwork) return;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: string[];
  try {
    addresses = net.isIP(hostname) ? [hostname] : await (options.resolve ?? systemResolver)(hostname);
  } catch (cause) {
    throw new UpstreamRequestError('network', url.href, { detail: `cannot resolve ${hostname}`, cause });
  }
  const refused = addresses.filter(isPrivateAddress);
  if (!addresses.length || refused.length) {
    throw new UpstreamRequestError('blocked', url.href, {
      detail: `${hostname} resolves to ${refused.join(', ') || 'nothing'}, a private or special-purpose address; set REALMGATE_ALLOW_PRIVATE_NETWORK=true to allow it`,
    });
  }
}

/**
 * A `fetch` for upstream requests: SSRF guard, a timeout per request, and redirects returned as
 * they are rather than followed (openid-client and jose never ask to follow them), so a redirect
 * cannot lead past the guard. Failures reject with `UpstreamRequestError`.
 */
export function createUpstreamFetch(options: UpstreamFetchOptions): typeof fetch {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    await assertAllowed(url, options);
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      return await fetch(input instanceof Request ? input : url, { ...init, signal, redirect: 'manual' });
    } catch (cause) {
      if (timeout.aborted || (cause as Error | undefined)?.name === 'TimeoutError') {
        throw new UpstreamRequestError('timeout', url.href, { detail: `no answer from ${url.origin} within ${options.timeoutMs} ms`, cause });
      }
      throw new UpstreamRequestError('network', url.href, { detail: `request to ${url.origin} failed: ${(cause as Error).message}`, cause });
    }
  };
}

/** The context every provider is opened with: Realmgate's URLs, the guarded fetch and the timeout. */
export function createOpenContext(
  config: Pick<Config, 'issuer' | 'allowPrivateNetwork' | 'upstreamTimeoutMs'>,
  overrides: Partial<OpenContext> = {},
): OpenContext {
  return {
    issuer: config.issuer,
    endpointUrl: (alias, path) => `${config.issuer}/federation/${encodeURIComponent(alias)}/${path.replace(/^\//, '')}`,
    timeoutMs: config.upstreamTimeoutMs,
    allowPrivateNetwork: config.allowPrivateNetwork,
    fetch: createUpstreamFetch({ allowPrivateNetwork: config.allowPrivateNetwork, timeoutMs: config.upstreamTimeoutMs }),
    ...overrides,
  };
}
