// A person at a real browser (headless Debian Chromium, driven by playwright-core) for
// tests/test_browser_e2e.py: logs in and consents on provider.mjs's devInteractions pages.
// Install: bash scripts/setup-browser.sh
//
//   node browse.mjs login URL    # authorization URL -> login + consent -> keyfob's result page;
//                                # prints that page's <h1> ("Logged in")
//   node browse.mjs device URL   # verification_uri_complete -> confirm + login + consent;
//                                # prints the provider's closing <h1>
//
// Env (optional): SCREENSHOT=path.png (the last page, as PNG), LOGIN (default alice),
// CHROMIUM (default /usr/lib/chromium/chromium), TIMEOUT_MS (default 30000).
// Only loopback is reachable: every request to another host is aborted (the dev pages
// import a web font). Exit 0 on success; otherwise one line on stderr and exit 1.
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/lib/chromium/chromium';
const LOGIN = process.env.LOGIN || 'alice';
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS || 30000);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const isKeyfobPage = async (page) => (await page.title()).startsWith('keyfob:');
const isDeviceDone = async (page) => /Sign-in Success/i.test(await page.title());

async function submit(page, selector) {
  await Promise.all([page.waitForNavigation({ timeout: TIMEOUT_MS }), page.click(selector)]);
}

// Answers whatever the devInteractions UI shows until `done(page)`.
async function interact(page, done) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    await page.waitForLoadState('domcontentloaded');
    if (await done(page)) return;
    if (Date.now() > deadline) throw new Error(`no result page within ${TIMEOUT_MS} ms; at ${page.url()}`);
    if (await page.locator('input[name="login"]').count()) {
      await page.fill('input[name="login"]', LOGIN);
      await page.fill('input[name="password"]', 'any-password');
      await submit(page, 'button[type="submit"]');
    } else if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      await submit(page, 'button[type="submit"]');
    } else if (await page.locator('form#op\\.deviceConfirmForm').count()) {
      await submit(page, 'button[autofocus]');
    } else if (await page.locator('form#op\\.deviceInputForm').count()) {
      throw new Error('the device page asks for the user code (it was not in the address)');
    } else {
      const text = (await page.locator('body').innerText()).replace(/\s+/g, ' ').slice(0, 300);
      throw new Error(`unexpected page ${page.url()} (${await page.title()}): ${text}`);
    }
  }
}

async function main() {
  const [mode, url] = process.argv.slice(2);
  const done = { login: isKeyfobPage, device: isDeviceDone }[mode];
  if (!done || !url) {
    console.error('usage: node browse.mjs login|device URL');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 800, height: 500 } });
    await context.route((u) => !LOOPBACK.has(u.hostname), (route) => route.abort());
    const page = await context.newPage();
    await page.goto(url, { timeout: TIMEOUT_MS });
    await interact(page, done);
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
    console.log((await page.locator('h1').first().innerText()).trim());
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`browse.mjs: ${String(e.message || e).split('\n')[0]}`);
  process.exit(1);
});
