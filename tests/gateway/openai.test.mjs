// OpenAI's API on chat-gateway, driven by the official `openai` npm package,
// unmodified, with only its baseURL pointed at the gateway.
//
// Strategy: one stack (chat-server with an admin key, so every call needs an
// API key, and the Anthropic provider pointed at the fake upstream in
// tests/fake_upstream/, whose `model` picks its behaviour) and keys made
// through the admin API: a plain one, and one with a limit of 2 requests a
// minute for the 429. The fake upstream's statistics show what chatd sent
// upstream (stop sequences, user, max_tokens) and when a request was closed
// early (an aborted stream). The SDK's retries are off (maxRetries: 0), so a
// 429 reaches the test as the SDK's typed error.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import OpenAI from 'openai';
import { SOURCE_DIR, postJson, startProcess, startStack } from './harness.mjs';

const ADMIN_KEY = 'admin-secret-openai-5d2c8e1f';

describe('the OpenAI SDK against chat-gateway', () => {
  let upstream;
  let upstreamBase;
  let stack;
  let key;
  let client;

  const upstreamStats = async (model) =>
    (await fetch(`${upstreamBase}/_stats?key=${encodeURIComponent(model)}`)).json();

  async function createKey(name, limits = {}) {
    const res = await postJson(stack.base, '/v1/admin/keys', { tenant: 'acme', name, limits },
      { Authorization: `Bearer ${ADMIN_KEY}` });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()).key;
  }

  const openai = (apiKey) =>
    new OpenAI({ apiKey, baseURL: `${stack.base}/v1`, maxRetries: 0, timeout: 20000 });

  before(async () => {
    upstream = await startProcess(process.execPath,
      [join(SOURCE_DIR, 'tests/fake_upstream/server.mjs')]);
    upstreamBase = `http://127.0.0.1:${upstream.port}`;
    stack = await startStack({
      provider: 'anthropic',
      serverArgs: ['--provider_retries=0', '--first_byte_timeout=5s', '--idle_timeout=5s'],
      serverEnv: {
        ANTHROPIC_API_KEY: 'sk-ant-test-secret',
        ANTHROPIC_BASE_URL: upstreamBase,
        CHAT_ADMIN_KEY: ADMIN_KEY,
      },
    });
    key = await createKey('sdk');
    client = openai(key);
  });
  after(async () => {
    await stack?.stop();
    await upstream?.stop();
  });

  it('answers chat.completions.create, and stores nothing', async () => {
    const completion = await client.chat.completions.create({
      model: 'ok@oa-unary',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'First question' },
        { role: 'assistant', content: 'First answer' },
        { role: 'user', content: [{ type: 'text', text: 'Second question' }] },
      ],
      max_completion_tokens: 50,
      temperature: 0.5,
      stop: ['\n\n', 'END'],
      user: 'end-user-42',
    });
    assert.equal(completion.object, 'chat.completion');
    assert.match(completion.id, /^chatcmpl-/);
    assert.equal(completion.choices.length, 1);
    assert.equal(completion.choices[0].message.role, 'assistant');
    // The fake says how many messages it got: the caller's three, no history.
    assert.match(completion.choices[0].message.content, /^Echo of 3 messages: Second question/);
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.ok(completion.usage.prompt_tokens > 0);
    assert.equal(completion.usage.total_tokens,
      completion.usage.prompt_tokens + completion.usage.completion_tokens);

    const sent = (await upstreamStats('ok@oa-unary')).last_request;
    assert.equal(sent.system, 'Be brief.');
    assert.equal(sent.max_tokens, 50);
    assert.equal(sent.temperature, 0.5);
    assert.deepEqual(sent.stop_sequences, ['\n\n', 'END']);
    assert.deepEqual(sent.metadata, { user_id: 'end-user-42' });

    // Stateless: the key's tenant has no session.
    const res = await fetch(`${stack.base}/v1/sessions`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).sessions ?? [], []);
  });

  it('streams chat.completions.create, with usage when asked', async () => {
    const stream = await client.chat.completions.create({
      model: 'ok@oa-stream',
      messages: [{ role: 'user', content: 'Stream this please' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 40,
    });
    let text = '';
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      for (const choice of chunk.choices) text += choice.delta?.content ?? '';
    }
    assert.match(text, /^Echo of 1 messages: Stream this please/);
    assert.ok(chunks.length > 3, `${chunks.length} chunks`);
    for (const chunk of chunks) assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage.completion_tokens > 0);
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
    assert.equal((await upstreamStats('ok@oa-stream')).last_request.max_tokens, 40);
  });

  it('streams without a usage chunk when none is asked, ending with [DONE]', async () => {
    const res = await postJson(stack.base, '/v1/chat/completions',
      { model: 'ok@oa-raw', messages: [{ role: 'user', content: 'raw' }], stream: true },
      { Authorization: `Bearer ${key}` });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    for (const e of events.slice(0, -1)) {
      const chunk = JSON.parse(e.replace(/^data: /, ''));
      assert.equal(chunk.usage, undefined);
      assert.equal(chunk.choices.length, 1);
    }
  });

  it('aborting a stream cancels the upstream call and stores nothing', async () => {
    const model = 'hold@oa-abort';
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model, messages: [{ role: 'user', content: 'Hold on' }], stream: true },
      { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    // The role chunk and the first delta: the upstream call is running.
    let got = '';
    while (!got.includes('Echo')) {
      const { value, done } = await iterator.next();
      assert.ok(!done, 'the stream ended early');
      got += value.choices[0]?.delta?.content ?? '';
    }
    controller.abort();
    // The SDK ends an aborted stream's iteration quietly.
    const after = await iterator.next().catch((e) => ({ error: e }));
    assert.ok(after.done || after.error, 'the stream went on after abort()');
    // Wait (bounded) for the fake to see its connection closed early.
    let stats;
    for (let i = 0; i < 200; i++) {
      stats = await upstreamStats(model);
      if (stats.closed_early >= 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(stats.closed_early, 1);
    assert.equal(stats.completed, 0);
    const res = await fetch(`${stack.base}/v1/stats`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(Number((await res.json()).total_sessions ?? 0), 0);
  });

  it('lists the models the key may use', async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    assert.deepEqual(models.map((m) => m.id), ['claude-sonnet-4-6']);
    assert.equal(models[0].object, 'model');
    const one = await client.models.retrieve('claude-sonnet-4-6');
    assert.equal(one.id, 'claude-sonnet-4-6');
  });

  it('raises the SDK\'s typed errors: 401, 404, 429, 400', async () => {
    const bad = openai('chatd_nosuchid_0123456789abcdef');
    await assert.rejects(
      bad.chat.completions.create({ model: 'ok', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => {
        assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
        assert.equal(e.status, 401);
        assert.equal(e.code, 'invalid_api_key');
        assert.equal(e.type, 'invalid_request_error');
        assert.doesNotMatch(e.message, /nosuchid_0123456789abcdef/);
        return true;
      });
    await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);

    await assert.rejects(client.models.retrieve('no-such-model'), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, String(e));
      assert.equal(e.status, 404);
      return true;
    });

    await assert.rejects(
      client.chat.completions.create({ model: 'ok', messages: [{ role: 'tool', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.type, 'invalid_request_error');
        return true;
      });

    const limited = openai(await createKey('limited', { requests_per_minute: 2 }));
    const ask = (stream) => limited.chat.completions.create(
      { model: 'ok@oa-limited', messages: [{ role: 'user', content: 'hi' }], stream });
    const { response } = await ask(false).withResponse();
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '1');
    for await (const chunk of await ask(true)) void chunk;
    for (const stream of [false, true]) {
      await assert.rejects(ask(stream), (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, String(e));
        assert.equal(e.status, 429);
        assert.equal(e.code, 'rate_limit_exceeded');
        assert.match(e.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
        assert.equal(e.headers.get('x-ratelimit-remaining-requests'), '0');
        return true;
      });
    }
  });

  it('keeps chatd\'s own error shape on its own routes', async () => {
    const res = await postJson(stack.base, '/v1/chat', { message: 'hi', session_id: 's' });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).code, 16);
  });
});
