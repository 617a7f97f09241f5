// The web chat page (clients/web/index.html, served at /web/) in a real
// browser, used as a person would: type, press Send, watch the reply stream
// in, ask again, reload, press Stop. Playwright drives Debian's Chromium
// (playwright-core downloads no browser of its own). scripts/test.sh sets
// CHAT_TEST_REQUIRE_BROWSER=1, so in CI a missing Chromium fails the test.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startStack, SOURCE_DIR } from './harness.mjs';

const CHROMIUM = [process.env.CHAT_TEST_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .find((p) => p && existsSync(p));
if (process.env.CHAT_TEST_REQUIRE_BROWSER === '1' && !CHROMIUM) {
  throw new Error('CHAT_TEST_REQUIRE_BROWSER=1 but no Chromium found');
}

describe('the web page in Chromium', { skip: CHROMIUM ? false : 'no chromium installed' }, () => {
  let stack;
  let browser;
  before(async () => {
    // 40 ms between words: a reply takes about half a second to stream.
    stack = await startStack({ echoDelay: '40ms', gatewayArgs: [`--web_root=${SOURCE_DIR}/clients`] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-quic'],
    });
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('streams replies, remembers the conversation, and stops on request', async () => {
    const page = await browser.newPage();
    await page.goto(`${stack.base}/web/`);
    const session = await page.textContent('#session');
    assert.ok(session.length > 0, 'the page shows its session id');

    await page.fill('#message', 'Hello from the page');
    await page.click('#send');
    const reply = page.locator('.assistant').last();
    // Streaming is visible: part of the reply is on screen before the rest.
    await page.waitForFunction(() => {
      const t = document.querySelector('.assistant:last-of-type')?.textContent ?? '';
      return t.length > 0 && !t.endsWith('conversation.');
    });
    await assert.doesNotReject(reply.filter({ hasText: 'start of our conversation.' }).waitFor());
    assert.equal(await reply.textContent(),
      'You said: "Hello from the page". This is the start of our conversation.');

    await page.fill('#message', 'What did I say?');
    await page.click('#send');
    await page.locator('.assistant').nth(1).filter({ hasText: 'conversation.' }).waitFor();
    assert.match(await page.locator('.assistant').nth(1).textContent(),
      /Before that you said: "Hello from the page"/);

    // A reload shows the stored conversation of the same session.
    await page.reload();
    await page.locator('.assistant').nth(1).waitFor();
    assert.equal(await page.locator('.user').count(), 2);
    assert.equal(await page.textContent('#session'), session);

    // Stop mid-reply: the page says nothing was stored, and nothing was.
    await page.fill('#message', 'Never mind');
    await page.click('#send');
    await page.waitForFunction(() => {
      const all = document.querySelectorAll('.assistant');
      return (all[all.length - 1]?.textContent ?? '').length > 0;
    });
    await page.click('#stop');
    await page.locator('.error', { hasText: 'Stopped (nothing stored).' }).waitFor();
    await page.screenshot({ path: `${process.env.CHAT_TEST_SCREENSHOT_DIR ?? '/tmp'}/chatd-web-page.png` });
    // The cancelled turn is not in the history.
    await new Promise((r) => setTimeout(r, 300));
    const history = await (await fetch(`${stack.base}/history/${session}`)).json();
    assert.equal(history.turn_count, 2);
    assert.deepEqual(history.messages.filter((m) => m.role === 'user').map((m) => m.content),
      ['Hello from the page', 'What did I say?']);
  });
});
