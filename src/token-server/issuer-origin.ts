import type { KoaContextWithOIDC } from 'oidc-provider';

type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

/**
 * Pins every URL the token engine derives from a request to the issuer. oidc-provider builds its
 * URLs (discovery, redirects, the interaction's return address, logout forms) from Koa's
 * `ctx.href`, which comes from the request's Host header, or X-Forwarded-Host/-Proto behind a
 * trusted proxy: a client could make it hand out any origin. Here the request's protocol, host and
 * origin are the issuer's, and an absolute-form request target (`GET http://other/…`) keeps only
 * its path. Secure cookies follow the issuer's protocol too.
 */
export function pinToIssuer(issuer: string): Middleware {
  const url = new URL(issuer);
  const protocol = url.protocol.slice(0, -1);
  return async (ctx, next) => {
    const target = new URL(ctx.request.originalUrl, url.origin);
    Object.defineProperties(ctx.request, {
      protocol: { value: protocol },
      host: { value: url.host },
      hostname: { value: url.hostname },
      origin: { value: url.origin },
      href: { value: `${url.origin}${target.pathname}${target.search}` },
    });
    await next();
  };
}
