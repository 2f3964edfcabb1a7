import { CookieJar } from 'tough-cookie';

/** A response as seen by the test "browser". */
export interface PageResponse {
  status: number;
  url: URL;
  headers: Headers;
  body: string;
}

/**
 * A browser without a browser: fetch with a cookie jar, redirects followed by hand so a test can
 * stop at the application's redirect_uri. HTML forms are read with small regexes over our own pages.
 */
export class HttpSession {
  readonly jar = new CookieJar();

  /** Sends one request with the jar's cookies and stores the cookies it sets. */
  async request(url: string | URL, init: RequestInit = {}): Promise<PageResponse> {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const cookie = await this.jar.getCookieString(target.toString());
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(target, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) await this.jar.setCookie(c, target.toString(), { ignoreError: true });
    return { status: res.status, url: target, headers: res.headers, body: await res.text() };
  }

  /**
   * Follows redirects from `url` until a response is not a redirect, or the next location starts
   * with `stopAt` (an application's redirect_uri), which is returned unfetched as `url` with status 0.
   */
  async follow(url: string | URL, init: RequestInit = {}, stopAt?: string): Promise<PageResponse> {
    let res = await this.request(url, init);
    for (let hops = 0; hops < 20 && res.status >= 300 && res.status < 400; hops++) {
      const next = new URL(res.headers.get('location')!, res.url);
      if (stopAt && next.toString().startsWith(stopAt)) return { status: 0, url: next, headers: res.headers, body: '' };
      res = await this.request(next);
    }
    return res;
  }

  /** Posts a urlencoded form, then follows redirects like `follow`. */
  async submit(action: string | URL, fields: Record<string, string>, stopAt?: string): Promise<PageResponse> {
    return this.follow(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    }, stopAt);
  }
}

/** The action and hidden fields of the first `<form>` whose action matches `actionPattern`. */
export function readForm(page: PageResponse, actionPattern: RegExp, having: Record<string, string> = {}): { action: URL; fields: Record<string, string> } {
  const forms = [...page.body.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  for (const [, attrs, inner] of forms) {
    const action = /action="([^"]*)"/.exec(attrs!)?.[1]?.replace(/&amp;/g, '&');
    if (action === undefined || !actionPattern.test(action)) continue;
    const fields: Record<string, string> = {};
    for (const [, input] of inner!.matchAll(/<input\b([^>]*)>/g)) {
      const name = /name="([^"]*)"/.exec(input!)?.[1];
      const value = /value="([^"]*)"/.exec(input!)?.[1] ?? '';
      if (name) fields[name] = value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'");
    }
    if (Object.entries(having).some(([name, value]) => fields[name] !== value)) continue;
    return { action: new URL(action, page.url), fields };
  }
  throw new Error(`no form matching ${actionPattern} ${JSON.stringify(having)} on ${page.url} (status ${page.status}):\n${page.body.slice(0, 2000)}`);
}
