// The public pages (/members, /developers, /apps) in real headless Chromium: key
// content and links, no serious or critical axe-core violations, screenshots at phone
// and desktop widths under artifacts/screenshots/.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { VIEWPORTS, axeViolations, describe, launch, screenshotDir } from './lib/browser.mjs';
import { startServer } from './lib/server.mjs';

const HOSTILE_NAME = '<script>alert("x")</script> Tracker';

let server;
let browser;

before(async () => {
  server = await startServer();
  server.run([
    'apps', 'register', '--name', 'Claims Compass', '--redirect-uri', 'http://localhost:3000/callback',
    '--privacy-policy', 'https://claims-compass.example/privacy', '--attested',
    '--description', 'See every claim and what you paid.',
  ]);
  server.run(['apps', 'register', '--name', HOSTILE_NAME, '--redirect-uri', 'http://localhost:3001/cb']);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const PAGES = [
  {
    name: 'members',
    path: '/members',
    heading: 'Sharing your health information with apps',
    text: [
      '21st Century Cures Act', 'CMS-9115-F', 'CMS-0057-F', 'How to choose an app',
      'is not responsible for your information once an app has it', 'HIPAA may not cover the app',
      'one-time code', 'Revoke',
    ],
    links: (base) => [
      'https://reportfraud.ftc.gov/', 'https://www.hhs.gov/ocr/complaints/index.html',
      `${base}/connected-apps`, '/apps', '/developers', '/directory/find',
    ],
  },
  {
    name: 'developers',
    path: '/developers',
    heading: 'Developer portal',
    text: [
      'Base URL and discovery', '/.well-known/smart-configuration', 'ExplanationOfBenefit search parameters',
      'patient-access apps register', 'Privacy and security attestation', 'Sandbox members',
      '401 Unauthorized', '415 Unsupported Media Type', 'requests per second',
    ],
    links: (base) => [
      `${base}/metadata`, `${base}/.well-known/smart-configuration`, '/apps', '/directory/find',
      `${base}/directory/metadata`,
    ],
  },
  {
    name: 'apps',
    path: '/apps',
    heading: 'App directory',
    text: ['Claims Compass', 'See every claim and what you paid.', 'Attested', 'Not attested', HOSTILE_NAME],
    links: () => ['https://claims-compass.example/privacy', '/members#choose'],
  },
  {
    name: 'find-provider',
    path: '/directory/find',
    heading: 'Find a provider',
    text: ['Specialty', 'ZIP code or city', 'Distance', 'Network', 'Taking new patients', 'Language', 'PPO Network'],
    links: () => ['/developers#directory', '/members'],
  },
  {
    name: 'find-provider-results',
    path: '/directory/find?specialty=Family+medicine&where=Columbus&distance=10&accepting=yes&language=es',
    heading: 'Find a provider',
    text: ['Alicia Moreno', 'Family Medicine Physician', '500 River Road', 'Columbus, OH 43210', 'Taking new patients', 'English, Spanish'],
    links: () => ['/developers#directory'],
  },
];

for (const spec of PAGES) {
  for (const [viewport, size] of Object.entries(VIEWPORTS)) {
    test(`${spec.path} at ${viewport} width`, async () => {
      // bypassCSP lets axe-core in; the page itself runs no script.
      const context = await browser.newContext({ viewport: size, bypassCSP: true });
      const page = await context.newPage();
      const dialogs = [];
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      try {
        const response = await page.goto(`${server.baseUrl}${spec.path}`);
        assert.equal(response.status(), 200);
        assert.equal(response.headers()['content-type'], 'text/html; charset=utf-8');
        assert.match(response.headers()['content-security-policy'], /default-src 'self'; script-src 'none'/);

        assert.equal(await page.locator('h1').innerText(), spec.heading);
        const body = await page.locator('body').innerText();
        for (const text of spec.text) assert.ok(body.includes(text), `${spec.path} lacks ${JSON.stringify(text)}`);
        const hrefs = await page.$$eval('a[href]', (links) => links.map((a) => a.getAttribute('href')));
        for (const link of spec.links(server.baseUrl)) {
          assert.ok(hrefs.includes(link), `${spec.path} does not link ${link}`);
        }
        assert.deepEqual(dialogs, [], 'a script ran');

        // Keyboard users land on the skip link first, and it is visible when focused.
        await page.keyboard.press('Tab');
        assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
        assert.ok(await page.locator('.skip-link').isVisible());

        // Nothing scrolls sideways on a phone.
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 1, `${spec.path} is ${overflow}px wider than the ${viewport} viewport`);

        const violations = await axeViolations(page);
        const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
        assert.equal(blocking.length, 0, `axe-core found:\n${describe(blocking)}`);
        if (violations.length > 0) console.log(`axe (minor/moderate) on ${spec.path}:\n${describe(violations)}`);

        await page.keyboard.press('Escape');
        await page.evaluate(() => document.activeElement?.blur());
        await page.screenshot({ path: join(screenshotDir, `${spec.name}-${viewport}.png`), fullPage: true });
      } finally {
        await context.close();
      }
    });
  }
}

test('the pages need no JavaScript', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  try {
    await page.goto(`${server.baseUrl}/apps?q=compass`);
    assert.equal(await page.locator('h1').innerText(), 'App directory');
    const apps = await page.locator('ul.apps > li h3').allInnerTexts();
    assert.deepEqual(apps, ['Claims Compass']);
    await page.getByLabel('App name or description').fill('tracker');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=tracker/);
    assert.deepEqual(await page.locator('ul.apps > li h3').allInnerTexts(), [HOSTILE_NAME]);
  } finally {
    await context.close();
  }
});

test('Find a provider works without JavaScript, on the directory the API serves', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  try {
    await page.goto(`${server.baseUrl}/members`);
    await page.getByRole('link', { name: 'Find a provider' }).first().click();
    await page.waitForURL(/\/directory\/find$/);
    await page.getByLabel('ZIP code or city').fill('Columbus');
    await page.getByLabel('Distance').selectOption('10');
    await page.getByLabel('Taking new patients').check();
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/where=Columbus/);
    const shown = (await page.locator('ul.providers > li h3').allInnerTexts()).sort();
    assert.deepEqual(shown, ['Alicia Moreno', 'Thomas Becker']);
    const maps = await page.$$eval('ul.providers a[href^="https://www.openstreetmap.org/"]', (links) => links.length);
    assert.ok(maps >= 2, 'every location has a map link');

    // The API finds the same roles for the same criteria.
    const bundle = await (await fetch(`${server.baseUrl}/directory/PractitionerRole?location.address-city=Columbus&_count=100`)).json();
    assert.ok(bundle.entry.length >= shown.length);

    // Bad input: the form again with a plain reason, not an error page.
    const response = await page.goto(`${server.baseUrl}/directory/find?where=Columbus&distance=7`);
    assert.equal(response.status(), 400);
    assert.match(await page.locator('[role=alert]').innerText(), /Choose a distance/);
  } finally {
    await context.close();
  }
});

test('the developer portal lists exactly the search parameters /metadata advertises', async () => {
  const metadata = await (await fetch(`${server.baseUrl}/metadata`)).json();
  const advertised = metadata.rest[0].resource
    .flatMap((r) => (r.searchParam ?? []).map((p) => `${r.type}:${p.name}`))
    .sort();
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${server.baseUrl}/developers`);
    const listed = (await page.$$eval('[data-param]', (rows) => rows.map((row) => row.dataset.param))).sort();
    assert.ok(advertised.length > 0);
    assert.deepEqual(listed, advertised);
  } finally {
    await context.close();
  }
});

test('the connected-apps page the member page links to exists', async () => {
  const response = await fetch(`${server.baseUrl}/connected-apps`, { redirect: 'manual' });
  assert.notEqual(response.status, 404);
  assert.ok(response.status < 500, `GET /connected-apps answered ${response.status}`);
});
