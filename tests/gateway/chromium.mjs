// Debian's Chromium for the browser tests, driven by Playwright
// (playwright-core downloads no browser of its own). A test suite skips with
// `skip: BROWSER_SKIP` when no Chromium is installed; scripts/test.sh installs
// it and sets CHAT_TEST_REQUIRE_BROWSER=1, so in CI a missing browser fails
// the suite instead of skipping it.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = [process.env.CHAT_TEST_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .find((p) => p && existsSync(p));

if (process.env.CHAT_TEST_REQUIRE_BROWSER === '1' && !CHROMIUM) {
  throw new Error('CHAT_TEST_REQUIRE_BROWSER=1 but no Chromium found');
}

export const BROWSER_SKIP = CHROMIUM ? false : 'no chromium installed';

// Starts a headless Chromium that opens no connection beyond the pages'
// own: this machine has no network. `extraArgs` add to the command line.
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', ...extraArgs],
  });
}

// A fresh profile (its own storage) in `browser`. Every wait in the browser
// tests ends on something the page shows, so the bound only matters when a
// test fails; it is generous because a cold browser on a loaded machine, or
// a gateway built with sanitizers, can take far longer than Playwright's
// default 30 s to start and render.
export async function newContext(browser, options = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(120_000);
  context.setDefaultNavigationTimeout(120_000);
  return context;
}
