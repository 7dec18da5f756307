// The member's side of a SMART standalone launch in real headless Chromium: the app
// (this test) builds the authorize URL with PKCE S256; the member fills every page
// through its labels (email → identity questions → one-time code from the server's
// console → consent), approves, and the browser lands on the app's redirect URI (a tiny
// local listener) with `code` and `state`; the app then redeems the code. Screenshots of
// every page at phone and desktop widths go to artifacts/screenshots/.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { VIEWPORTS, launch, screenshotDir } from './lib/browser.mjs';
import { startServer } from './lib/server.mjs';

const SCOPE = 'launch/patient openid fhirUser offline_access patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs';
const CODE_LINE = /one-time sign-in code for \S+: (\S+)/;
const STEP_TIMEOUT_MS = 15_000;

let server;
let browser;
let callback;
let clientId;
let smartConfig;
let members;

/** The app's redirect URI: answers any GET with a small page, remembering the query. */
function startCallbackListener() {
  return new Promise((ok, fail) => {
    const received = [];
    const listener = createServer((request, response) => {
      received.push(new URL(request.url, 'http://localhost'));
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end('<!DOCTYPE html><html lang="en"><title>App</title><h1>The app received an authorization code</h1></html>');
    });
    listener.on('error', fail);
    listener.listen(0, '127.0.0.1', () => {
      const uri = `http://localhost:${listener.address().port}/callback`;
      ok({ uri, received, close: () => new Promise((done) => listener.close(done)) });
    });
  });
}

/** Waits (polling the captured console, bounded) for a one-time code printed after `mark`. */
async function codeFromConsole(mark) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const found = server.log.slice(mark).join('').match(CODE_LINE);
    if (found) return found[1];
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`no one-time code on the server console within ${STEP_TIMEOUT_MS} ms`);
}

function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

before(async () => {
  server = await startServer();
  callback = await startCallbackListener();
  const registered = server.run([
    'apps', 'register', '--name', 'Browser Test App', '--redirect-uri', callback.uri,
    '--privacy-policy', 'https://browser-test.example/privacy', '--attested',
  ]);
  clientId = registered.trim().split('\n').at(-1).trim();
  members = server.run(['members', '--details']).trim().split('\n').map((line) => JSON.parse(line));
  smartConfig = await (await fetch(`${server.baseUrl}/.well-known/smart-configuration`)).json();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await callback?.close();
  await server?.stop();
});

const RUNS = Object.entries(VIEWPORTS).map(([viewport, size], index) => ({ viewport, size, index }));

for (const { viewport, size, index } of RUNS) {
  test(`a member signs in, consents and the app gets a code, at ${viewport} width`, async () => {
    const member = members[index];
    const state = randomBytes(16).toString('base64url');
    const { verifier, challenge } = pkcePair();
    const authorize = new URL(smartConfig.authorization_endpoint);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: callback.uri,
      scope: SCOPE,
      state,
      aud: server.baseUrl,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();

    const context = await browser.newContext({ viewport: size });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    let shot = 0;
    const screenshot = async (step) => {
      shot += 1;
      const name = `standalone-launch-${viewport}-${String(shot).padStart(2, '0')}-${step}.png`;
      await page.screenshot({ path: join(screenshotDir, name), fullPage: true });
    };
    const heading = () => page.getByRole('heading', { level: 1 }).textContent();
    try {
      // 1. The email on file.
      const response = await page.goto(authorize.toString());
      assert.equal(response.status(), 200);
      assert.match(await heading(), /Connect Browser Test App to your health plan/);
      await page.getByLabel('Email address').fill(member.email);
      await screenshot('email');
      await page.getByRole('button', { name: 'Continue' }).click();

      // 2. The identity questions.
      await page.waitForURL(/\/authorize/);
      assert.equal(await heading(), 'Confirm who you are');
      await page.getByLabel('Date of birth').fill(member.birth_date);
      await page.getByLabel('Member ID').fill(member.member_id);
      await page.getByLabel('ZIP code').fill(member.postal_code);
      await screenshot('identity');
      const mark = server.log.length;
      await page.getByRole('button', { name: 'Continue' }).click();

      // 3. The one-time code, printed on the server's console instead of emailed.
      await page.getByLabel('One-time code').waitFor();
      assert.equal(await heading(), 'Enter the code we sent you');
      await page.getByLabel('One-time code').fill(await codeFromConsole(mark));
      await screenshot('code');
      await page.getByRole('button', { name: 'Continue' }).click();

      // 4. Consent: the app, its attestation and privacy policy, each kind of data.
      await page.getByRole('button', { name: 'Allow', exact: true }).waitFor();
      assert.equal(await heading(), 'Share your health plan data with Browser Test App?');
      const policy = page.getByRole('link', { name: /privacy policy/ });
      assert.equal(await policy.getAttribute('href'), 'https://browser-test.example/privacy');
      const boxes = page.getByRole('checkbox');
      assert.ok((await boxes.count()) >= 3, 'one checkbox per kind of data asked for');
      for (const box of await boxes.all()) assert.ok(await box.isChecked());
      await screenshot('consent');
      await page.getByRole('button', { name: 'Allow', exact: true }).click();

      // 5. Back at the app with a code and our state.
      await page.waitForURL((url) => url.toString().startsWith(callback.uri));
      const landed = new URL(page.url());
      assert.equal(landed.searchParams.get('state'), state);
      const code = landed.searchParams.get('code');
      assert.ok(code, `the redirect carries a code: ${landed}`);
      await screenshot('redirect');

      // The app redeems the code with its PKCE verifier.
      const token = await fetch(smartConfig.token_endpoint, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'authorization_code', code, redirect_uri: callback.uri, client_id: clientId, code_verifier: verifier,
        }),
      });
      assert.equal(token.status, 200);
      const body = await token.json();
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.patient, member.patient_id);
    } catch (error) {
      await screenshot('failure').catch(() => {});
      throw error;
    } finally {
      await context.close();
    }
  });
}
