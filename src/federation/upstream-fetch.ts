/**
 * Every request Realmgate makes to an upstream provider goes through one `fetch`: the host is
 * refused when it points at loopback, private, link-local or other special-purpose addresses
 * (unless the operator allows private networks), checked again on the address each socket
 * connects to, and each request has a timeout. undici (Node's own HTTP client, as a package) gives
 * the `Agent` whose connect-time `lookup` makes that second check.
 */
import dns from 'node:dns';
import net from 'node:net';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
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

/** The IPv4 address in the low 32 bits of eight IPv6 groups. */
function embeddedIpv4(groups: number[], at = 6): string {
  return [groups[at]! >> 8, groups[at]! & 255, groups[at + 1]! >> 8, groups[at + 1]! & 255].join('.');
}

/** The eight 16-bit groups of an IPv6 literal (a trailing dotted IPv4 part counts as two). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((g) => parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one: IPv4-mapped
 * (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated), IPv4-translated
 * (`::ffff:0:a.b.c.d`), NAT64 well-known prefix (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
 * Each of these reaches the IPv4 host on a dual-stack or translating network.
 */
function ipv4Behind(groups: number[]): string | undefined {
  const zero = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zero(0, 5) && groups[5] === 0xffff) return embeddedIpv4(groups); // mapped
  if (zero(0, 6)) return embeddedIpv4(groups); // compatible (`::` and `::1` land in 0.0.0.0/8)
  if (zero(0, 4) && groups[4] === 0xffff && groups[5] === 0) return embeddedIpv4(groups); // translated
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zero(2, 6)) return embeddedIpv4(groups); // NAT64
  if (groups[0] === 0x2002) return embeddedIpv4(groups, 1); // 6to4
  return undefined;
}

/** True when `address` (an IP literal) is loopback, private, link-local or otherwise not a public host. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blockList.check(address, 'ipv4');
  if (family !== 6) return true;
  const ipv4 = ipv4Behind(ipv6Groups(address));
  if (ipv4 !== undefined) return blockList.check(ipv4, 'ipv4');
  return blockList.check(address.toLowerCase(), 'ipv6');
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
  /**
   * Host resolution, for the early check and again for the address the socket connects to;
   * the system resolver by default.
   */
  resolve?: HostResolver | undefined;
}

function blocked(url: string, hostname: string, refused: string[]): UpstreamRequestError {
  return new UpstreamRequestError('blocked', url, {
    detail: `${hostname} resolves to ${refused.join(', ') || 'nothing'}, a private or special-purpose address; set REALMGATE_ALLOW_PRIVATE_NETWORK=true to allow it`,
  });
}

/**
 * Refuses a URL whose scheme is not http(s) or whose host is (or now resolves to) a refused
 * address. This early check gives a clear error before any socket opens; the connect-time
 * lookup below is what holds when the name resolves differently a moment later.
 */
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
  if (!addresses.length || refused.length) throw blocked(url.href, hostname, refused);
}

/** `net.connect`'s `lookup` option, as both its one-address and `all` forms call it. */
type ConnectLookup = (
  hostname: string,
  options: dns.LookupOptions,
  callback: (error: Error | null, address: string | dns.LookupAddress[], family?: number) => void,
) => void;

/**
 * The lookup every upstream socket connects with: it resolves the name and refuses the whole
 * connection when any answer is private, so the address checked is the address connected to
 * (no window for DNS rebinding between the check and the connection).
 */
function guardedLookup(resolve: HostResolver): ConnectLookup {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const refused = addresses.filter(isPrivateAddress);
        if (!addresses.length || refused.length) return callback(blocked(hostname, hostname, refused), []);
        const answers = addresses
          .map((address) => ({ address, family: net.isIP(address) }))
          .filter((a) => !options.family || a.family === options.family);
        if (options.all) return callback(null, answers);
        if (!answers[0]) return callback(blocked(hostname, hostname, []), []);
        callback(null, answers[0].address, answers[0].family);
      },
      (error: unknown) => callback(error as Error, []),
    );
  };
}

/** The first `UpstreamRequestError` in a cause chain (undici wraps connect errors in a TypeError). */
function requestErrorIn(error: unknown): UpstreamRequestError | undefined {
  for (let e = error, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof UpstreamRequestError) return e;
  }
  return undefined;
}

/**
 * A `fetch` for upstream requests: SSRF guard, a timeout per request, and redirects returned as
 * they are rather than followed (openid-client and jose never ask to follow them), so a redirect
 * cannot lead past the guard. Without `allowPrivateNetwork`, the guard holds at connect time: its
 * own undici `Agent` resolves each name with a lookup that refuses private answers. Failures
 * reject with `UpstreamRequestError`.
 */
export function createUpstreamFetch(options: UpstreamFetchOptions): typeof fetch {
  const dispatcher = options.allowPrivateNetwork
    ? new Agent()
    : new Agent({ connect: { lookup: guardedLookup(options.resolve ?? systemResolver) } });
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    await assertAllowed(url, options);
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const request: UndiciRequestInit = input instanceof Request
      ? { method: input.method, headers: [...input.headers], ...(input.body ? { body: await input.arrayBuffer() } : {}) }
      : {};
    try {
      const response = await undiciFetch(url, { ...request, ...(init as UndiciRequestInit), signal, redirect: 'manual', dispatcher });
      return response as unknown as Response;
    } catch (cause) {
      const refused = requestErrorIn(cause);
      if (refused) throw new UpstreamRequestError(refused.reason, url.href, { detail: `connection refused by the SSRF guard: ${refused.message}`, cause });
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
