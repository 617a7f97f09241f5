#!/usr/bin/env node
// Writes the README's screenshots of the chat app (clients/web/) to
// docs/screenshots/: web-app.png (desktop, a conversation with a code
// block), web-app-phone.png (375x740) and web-app-dark.png (dark mode). It
// starts chat-server (echo provider, priced as a Claude model so the cost
// shows) and chat-gateway from build/bin on loopback, and drives Debian's
// Chromium with playwright-core from tests/node_modules:
//
//   bash scripts/web-assets.sh && (cd tests && npm ci) && node scripts/web-screenshots.mjs
//
// CHAT_SERVER_BINARY, CHAT_GATEWAY_BINARY, CHAT_TEST_CHROMIUM and
// CHAT_SCREENSHOT_DIR override the defaults.
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.env.CHAT_SERVER_BINARY ??= join(root, 'build/bin/chat-server');
process.env.CHAT_GATEWAY_BINARY ??= join(root, 'build/bin/chat-gateway');
process.env.CHAT_SOURCE_DIR ??= root;
const { startStack } = await import('../tests/gateway/harness.mjs');
const { chromium } = createRequire(join(root, 'tests/package.json'))('playwright-core');

const chromiumPath = [process.env.CHAT_TEST_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .find((p) => p && existsSync(p));
if (!chromiumPath) throw new Error('no Chromium found (set CHAT_TEST_CHROMIUM)');
const out = process.env.CHAT_SCREENSHOT_DIR ?? join(root, 'docs/screenshots');
mkdirSync(out, { recursive: true });

const CODE_QUESTION = [
  'How do I stream a reply with the JS client?',
  '',
  '```js',
  "import { ChatClient } from '/js/chat-client.js';",
  "const client = new ChatClient('');",
  "await client.chatStream('Hello!', (text) => show(text));",
  '```',
  '',
].join('\n');

const stack = await startStack({
  echoDelay: '1ms', gatewayArgs: [`--web_root=${root}/clients`],
});
const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-quic'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${stack.base}/web/`);
  for (const message of ['Plan a weekend in Lisbon', 'Explain **SSE** in one line']) {
    await page.fill('#message', message);
    await page.keyboard.press('Enter');
    await page.locator('.message.assistant .meta').filter({ hasText: 'tokens' }).waitFor();
    await page.click('#new-chat');
  }
  await page.click('#chat-options summary');
  await page.fill('#model', 'claude-sonnet-4-6');
  await page.fill('#system-prompt', 'You are a concise programming assistant.');
  await page.click('#chat-options summary');
  await page.fill('#message', 'Hi! Can you help me with the JS client?');
  await page.keyboard.press('Enter');
  await page.locator('.message.assistant .meta').filter({ hasText: '$' }).waitFor();
  await page.fill('#message', CODE_QUESTION);
  await page.keyboard.press('Enter');
  await page.locator('.message.assistant .meta').nth(1).filter({ hasText: '$' }).waitFor();
  await page.locator('.copy-code').first().focus();
  await page.screenshot({ path: join(out, 'web-app.png') });

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(out, 'web-app-dark.png') });

  const phone = await browser.newContext({
    viewport: { width: 375, height: 740 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true,
  });
  const phonePage = await phone.newPage();
  const url = page.url();
  await phonePage.goto(url);
  await phonePage.locator('.message.assistant').nth(1).waitFor();
  await phonePage.screenshot({ path: join(out, 'web-app-phone.png') });
  console.log(`wrote web-app.png, web-app-dark.png, web-app-phone.png to ${out}`);
} finally {
  await browser.close();
  await stack.stop();
}
