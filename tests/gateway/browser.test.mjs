// The JS client in a real browser: headless Chromium loads a page from
// another origin (file://) that imports clients/js/chat-client.js from the
// gateway and calls it, so CORS (the module and every request), fetch
// streaming and the SSE parser all run as a user's browser runs them. The
// page writes its result into #out, which the test waits for.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, SOURCE_DIR } from './harness.mjs';
import { BROWSER_SKIP, launchChromium, newContext } from './chromium.mjs';

function page(base) {
  return `<!doctype html><html><body><pre id="out">pending</pre>
<script type="module">
import { ChatClient, ChatError } from '${base}/js/chat-client.js';
const out = document.getElementById('out');
try {
  const client = new ChatClient('${base}', { sessionId: 'browser-1' });
  const reply = await client.chat('Hello from a browser');
  const chunks = [];
  const turn = await client.chatStream('and streamed', (t) => chunks.push(t));
  const history = await client.getHistory();
  let status = 0;
  try { await new ChatClient('${base}', { sessionId: 'nobody' }).getHistory(); }
  catch (e) { status = e instanceof ChatError ? e.status : -1; }
  out.textContent = JSON.stringify({
    reply, chunks: chunks.length, joined: chunks.join('') === turn.response,
    turns: history.turn_count, status });
} catch (e) {
  out.textContent = JSON.stringify({ error: String(e) });
}
</script></body></html>`;
}

describe('ChatClient in Chromium', { skip: BROWSER_SKIP }, () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startStack({
      echoDelay: '5ms',
      gatewayArgs: ['--cors_origins=*', `--web_root=${SOURCE_DIR}/clients`],
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('chats, streams and reports errors from another origin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatd-browser-'));
    const file = join(dir, 'page.html');
    writeFileSync(file, page(stack.base));
    const tab = await (await newContext(browser)).newPage();
    // What the page logged, for the message if it never reports.
    const log = [];
    tab.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    tab.on('pageerror', (e) => log.push(`uncaught: ${e}`));
    await tab.goto(`file://${file}`);
    await tab.waitForFunction(() => document.getElementById('out').textContent !== 'pending')
      .catch((e) => { throw new Error(`the page never reported: ${e}\n${log.join('\n')}`); });
    const result = JSON.parse(await tab.textContent('#out'));
    assert.equal(result.error, undefined, result.error);
    assert.match(result.reply, /Hello from a browser/);
    assert.ok(result.chunks > 1);
    assert.equal(result.joined, true);
    assert.equal(result.turns, 2);
    assert.equal(result.status, 404);
  });
});
