import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type RunningDemo } from '../demo/start.ts';
import { DEMO_USERS } from '../demo/upstream-idp.ts';
import { eventually } from './support/eventually.ts';
import { HttpSession, readForm, type PageResponse } from './support/http-session.ts';
import { freePort } from './support/server.ts';

const ada = DEMO_USERS[0]!;
let demo: RunningDemo;
let dataDir: string;

/** The demo as `npm run demo` starts it, on free ports, its embedded database in a temporary directory. */
beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'realmgate-demo-'));
  const url = async () => `http://127.0.0.1:${await freePort()}`;
  demo = await startDemo({ realmgate: await url(), idp: await url(), app: await url() }, { dataDir, logLevel: 'silent' });
});

afterAll(async () => {
  await demo?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Clicks "Sign in with idp_hint=demo-idp" and signs in at the Demo IdP; returns the application's page. */
async function signIn(browser: HttpSession): Promise<PageResponse> {
  const atIdp = await browser.follow(`${demo.urls.app}/login?idp_hint=demo-idp`);
  expect(atIdp.url.origin).toBe(demo.urls.idp);
  const form = readForm(atIdp, /\/login$/);
  const home = await browser.submit(form.action, { login: ada.email, password: ada.password });
  expect(home.url.toString()).toBe(`${demo.urls.app}/`);
  expect(home.body).toContain('Signed in as');
  return home;
}

/** Confirms oidc-provider's "sign out?" page (Realmgate's or the Demo IdP's) with "Yes". */
async function confirmSignOut(browser: HttpSession, page: PageResponse): Promise<PageResponse> {
  const form = readForm(page, /\/session\/end\/confirm$/);
  return browser.submit(form.action, { ...form.fields, logout: 'yes' });
}

describe('the demo', () => {
  it('signs the application out when the user signs out at the Demo IdP only (back-channel logout through Realmgate)', async () => {
    const browser = new HttpSession();
    await signIn(browser);
    const done = await confirmSignOut(browser, await browser.follow(`${demo.urls.idp}/session/end`));
    expect(done.url.origin).toBe(demo.urls.idp);
    await eventually('the application was told', async () => (await browser.follow(`${demo.urls.app}/`)).body.includes('You are not signed in'));
  });

  it('signs out of the application, Realmgate and the Demo IdP from the application, and returns to it', async () => {
    const browser = new HttpSession();
    await signIn(browser);
    const atRealmgate = await browser.follow(`${demo.urls.app}/logout`);
    expect(atRealmgate.url.origin).toBe(demo.urls.realmgate);
    const atIdp = await confirmSignOut(browser, atRealmgate);
    expect(atIdp.url.origin).toBe(demo.urls.idp);
    const back = await confirmSignOut(browser, atIdp);
    expect(back.url.toString()).toBe(`${demo.urls.app}/`);
    expect(back.body).toContain('You are not signed in');
    // The Demo IdP's session is gone too: signing in again asks for the password there.
    const again = await browser.follow(`${demo.urls.app}/login?idp_hint=demo-idp`);
    expect(again.url.origin).toBe(demo.urls.idp);
    expect(again.body).toContain('Sign in at Demo IdP');
  });
});
