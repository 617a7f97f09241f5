// The chat app picks an answer up again after a page reload mid-answer
// (clients/web/resume.js over ChatClient.resumeStream), in a real browser
// (playwright-core + Debian's Chromium, chromium.mjs). Strategy: a
// slow echo (40 ms per word) keeps the answer streaming; the page is
// reloaded once some text has shown, and the test waits for the usage line
// of the finished answer, then checks the page and the store agree, one turn.
// Every wait is on something the page or the server shows.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, SOURCE_DIR, words } from './harness.mjs';
import { BROWSER_SKIP, launchChromium, newContext } from './chromium.mjs';

describe('reload mid-answer', { skip: BROWSER_SKIP }, () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startStack({ echoDelay: '40ms', gatewayArgs: [`--web_root=${SOURCE_DIR}/clients`] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('a reload while the answer streams shows the whole answer once', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${stack.base}/web/`);
    await page.locator('#session-id').filter({ hasText: /./ }).waitFor();
    const session = await page.textContent('#session-id');
    await page.fill('#message', words(40));
    await page.press('#message', 'Enter');
    await page.waitForFunction(() => {
      const last = [...document.querySelectorAll('.message.assistant')].at(-1);
      return last?.getAttribute('aria-busy') === 'true' && last.querySelector('.content').textContent.length > 0;
    });
    await page.reload();
    await page.locator('.message.assistant .meta', { hasText: 'tokens' }).first().waitFor();
    const res = await fetch(`${stack.base}/v1/sessions/${encodeURIComponent(session)}/history`);
    const body = await res.json();
    assert.equal(body.turn_count, 1);
    assert.deepEqual(await page.locator('.message.user .content').allTextContents(), [words(40)]);
    assert.equal(await page.locator('.message.assistant').count(), 1);
    const shown = (await page.locator('.message.assistant .content').textContent()).replace(/\s+/g, ' ').trim();
    assert.ok(shown.includes('This is the start of our conversation'), shown);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
