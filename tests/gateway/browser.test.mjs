// The JS client in a real browser: headless Chromium loads a page from
// another origin (file://) that imports clients/js/chat-client.js from the
// gateway and calls it, so CORS (the module and every request), fetch
// streaming and the SSE parser all run as a user's browser runs them. The
// page reports by chatting its result into session "browser-result", which
// the test reads back (headless --dump-dom would not wait for a stream).
// Skips when no Chromium is installed (Debian package `chromium`).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, SOURCE_DIR } from './harness.mjs';

const CHROMIUM = [process.env.CHAT_TEST_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .find((p) => p && existsSync(p));

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
await new ChatClient('${base}', { sessionId: 'browser-result' }).chat(out.textContent);
</script></body></html>`;
}

// scripts/test.sh installs Chromium and sets CHAT_TEST_REQUIRE_BROWSER=1, so
// in CI a missing browser fails the test instead of skipping it.
const REQUIRED = process.env.CHAT_TEST_REQUIRE_BROWSER === '1';
if (REQUIRED && !CHROMIUM) throw new Error('CHAT_TEST_REQUIRE_BROWSER=1 but no Chromium found');

describe('ChatClient in Chromium', { skip: CHROMIUM ? false : 'no chromium installed' }, () => {
  let stack;
  before(async () => {
    stack = await startStack({
      echoDelay: '5ms',
      gatewayArgs: ['--cors_origins=*', `--web_root=${SOURCE_DIR}/clients`],
    });
  });
  after(async () => { await stack?.stop(); });

  it('chats, streams and reports errors from another origin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatd-browser-'));
    const file = join(dir, 'page.html');
    writeFileSync(file, page(stack.base));
    const browser = spawn(CHROMIUM, [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
      // No connections beyond the page's own: this machine has no network.
      '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic',
      `--user-data-dir=${join(dir, 'profile')}`, `file://${file}`,
    ], { stdio: 'ignore' });
    let result;
    try {
      // Bounded wait for the page's report.
      for (let i = 0; i < 300 && !result; i++) {
        const res = await fetch(`${stack.base}/history/browser-result`);
        if (res.status === 200) result = JSON.parse((await res.json()).messages[0].content);
        else await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      browser.kill('SIGKILL');
    }
    assert.ok(result, 'the page never reported');
    assert.equal(result.error, undefined, result.error);
    assert.match(result.reply, /Hello from a browser/);
    assert.ok(result.chunks > 1);
    assert.equal(result.joined, true);
    assert.equal(result.turns, 2);
    assert.equal(result.status, 404);
  });
});
