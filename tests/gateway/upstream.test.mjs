// The whole path with a real provider protocol: chat-gateway -> chat-server
// -> the fake LLM upstream (tests/fake_upstream/server.mjs, Anthropic's wire
// format). Provider failures must reach HTTP clients with the right status
// and no secret, a mid-stream failure must follow the template's raw-text
// convention, and a browser that goes away must close the upstream request.
// The request's `model` picks the fake's behaviour (see server.mjs).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startProcess, startStack, postJson, SOURCE_DIR, poll } from './harness.mjs';

describe('through a provider', () => {
  let upstream;
  let stack;
  let upstreamBase;
  before(async () => {
    upstream = await startProcess(process.execPath,
      [join(SOURCE_DIR, 'tests/fake_upstream/server.mjs')]);
    upstreamBase = `http://127.0.0.1:${upstream.port}`;
    stack = await startStack({
      provider: 'anthropic',
      serverArgs: ['--provider_retries=0', '--first_byte_timeout=5s', '--idle_timeout=5s'],
      serverEnv: { ANTHROPIC_API_KEY: 'sk-ant-test-secret', ANTHROPIC_BASE_URL: upstreamBase },
    });
  });
  after(async () => {
    await stack?.stop();
    await upstream?.stop();
  });

  const chat = (model, session, path = '/chat', headers = {}) =>
    postJson(stack.base, path, { message: 'Hello there', session_id: session, model }, headers);

  it('answers a turn from the provider', async () => {
    const res = await chat('ok@gw-ok', 'up-ok');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.match(body.response, /^Echo of 1 messages: Hello there/);
  });

  for (const [upstreamStatus, httpStatus, code] of [[429, 429, 8], [503, 503, 14], [401, 500, 13]]) {
    it(`maps a provider ${upstreamStatus} to HTTP ${httpStatus}`, async () => {
      const res = await chat(`status:${upstreamStatus}@gw-${upstreamStatus}`, `up-${upstreamStatus}`);
      assert.equal(res.status, httpStatus);
      const body = await res.json();
      assert.equal(body.code, code);
      assert.ok(!body.message.includes('sk-ant-test-secret'));
      assert.equal((await fetch(`${stack.base}/history/up-${upstreamStatus}`)).status, 404);
    });
  }

  it('appends a mid-stream provider error to /chat-stream as "\\nError: ..."', async () => {
    const res = await chat('midstream@gw-mid', 'up-mid', '/chat-stream');
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^Echo /);
    assert.match(text, /\nError: .+/);
  });

  it('closes the upstream request on :cancel after the HTTP client went away', async () => {
    const key = 'hold@gw-cancel';
    const controller = new AbortController();
    const res = await fetch(`${stack.base}/v1/chat:stream`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: 'Hi', session_id: 'up-cancel', model: key }),
      signal: controller.signal,
    });
    const reader = res.body.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /^event: delta/);
    controller.abort();
    await reader.read().catch(() => {});
    // The answer runs on detached (for a resume) until it is cancelled.
    assert.equal((await fetch(`${stack.base}/v1/sessions/up-cancel:cancel`,
      { method: 'POST' })).status, 200);
    // Wait (bounded) for the fake to see its connection closed early.
    let stats;
    await poll(async () => {
      stats = await (await fetch(`${upstreamBase}/_stats?key=${encodeURIComponent(key)}`)).json();
      return stats.closed_early >= 1;
    });
    assert.equal(stats.closed_early, 1);
    assert.equal(stats.completed, 0);
    assert.equal((await fetch(`${stack.base}/history/up-cancel`)).status, 404);
  });
});
