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
import { SOURCE_DIR, postJson, startProcess, startStack, waitForRoomInTheMinute, poll } from './harness.mjs';

const ADMIN_KEY = 'admin-secret-openai-5d2c8e1f';

describe('the OpenAI SDK against chat-gateway', () => {
  let upstream;
  let upstreamBase;
  let stack;
  let key;
  let client;

  const upstreamStats = async (model) =>
    (await fetch(`${upstreamBase}/_stats?key=${encodeURIComponent(model)}`)).json();

  async function createKey(name, limits = {}, tenant = 'acme') {
    const res = await postJson(stack.base, '/v1/admin/keys', { tenant, name, limits },
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
    await poll(async () => {
      stats = await upstreamStats(model);
      return stats.closed_early >= 1;
    });
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

    // Over chatd's limits: a 400 naming the limit.
    const tooMany = Array.from({ length: 1001 }, (_, i) =>
      ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` }));
    await assert.rejects(
      client.chat.completions.create({ model: 'ok', messages: tooMany }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.match(e.message, /messages has 1001 entries; the limit is 1000/);
        return true;
      });
    await assert.rejects(
      client.chat.completions.create(
        { model: 'ok', messages: [{ role: 'user', content: 'x'.repeat(70000) }] }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.match(e.message, /messages\[0\]\.content is 70000 bytes/);
        return true;
      });

    const limited = openai(await createKey('limited', { requests_per_minute: 2 }));
    await waitForRoomInTheMinute();
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

  // Responses and Conversations run on chatd sessions: their own tenants,
  // so the stateless tests above still see none.
  const history = async (apiKey, session) => {
    const res = await fetch(`${stack.base}/v1/sessions/${encodeURIComponent(session)}/history`,
      { headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(res.status, 200, await res.clone().text());
    return res.json();
  };

  it('chains responses.create by previous_response_id, on one session', async () => {
    const apiKey = await createKey('responses', {}, 'resp-chain');
    const c = openai(apiKey);
    const r1 = await c.responses.create({
      model: 'ok@resp-chain', input: 'First turn', instructions: 'Be brief.',
    });
    assert.equal(r1.object, 'response');
    assert.equal(r1.status, 'completed');
    assert.equal(r1.store, true);
    assert.match(r1.output_text, /^Echo of 1 messages: First turn/);
    assert.equal(r1.output[0].type, 'message');
    assert.equal(r1.output[0].role, 'assistant');
    assert.ok(r1.usage.input_tokens > 0);
    assert.equal((await upstreamStats('ok@resp-chain')).last_request.system, 'Be brief.');

    // The model sees the earlier turn.
    const r2 = await c.responses.create({
      model: 'ok@resp-chain', input: 'Second turn', previous_response_id: r1.id,
    });
    assert.match(r2.output_text, /^Echo of 3 messages: Second turn/);
    assert.equal(r2.previous_response_id, r1.id);

    // One chatd session holds both turns, read through chatd's own route.
    const session = r2.conversation.id;
    assert.equal(r1.conversation.id, session);
    const stored = await history(apiKey, session);
    assert.equal(stored.turn_count, 2);
    assert.deepEqual(stored.messages.map((m) => m.content.split(':')[0]),
      ['First turn', 'Echo of 1 messages', 'Second turn', 'Echo of 3 messages']);

    const again = await c.responses.retrieve(r2.id);
    assert.equal(again.id, r2.id);
    assert.equal(again.output_text, r2.output_text);
    assert.equal(again.previous_response_id, r1.id);
    // Read back as it was answered: the model that answered, its usage.
    assert.equal(again.model, r2.model);
    assert.ok(r2.model.length > 0);
    assert.deepEqual(again.usage, r2.usage);
    assert.equal(again.status, 'completed');

    // store: false answers from the same history and stores nothing.
    const side = await c.responses.create({
      model: 'ok@resp-chain', input: 'Side question', previous_response_id: r2.id, store: false,
    });
    assert.match(side.output_text, /^Echo of 5 messages: Side question/);
    assert.equal(side.store, false);
    assert.equal((await history(apiKey, session)).turn_count, 2);
    await assert.rejects(c.responses.retrieve(side.id), OpenAI.NotFoundError);
    // From an earlier response, not stored: its history up to there.
    const fork = await c.responses.create({
      model: 'ok@resp-chain', input: 'Fork', previous_response_id: r1.id, store: false,
    });
    assert.match(fork.output_text, /^Echo of 3 messages: Fork/);
    // And stored: a branch of the session after r1, made active; r2 stays
    // on the branch it was made on, and both chains go on.
    const stored_fork = await c.responses.create({
      model: 'ok@resp-chain', input: 'Stored fork', previous_response_id: r1.id,
    });
    assert.match(stored_fork.output_text, /^Echo of 3 messages: Stored fork/);
    assert.equal(stored_fork.previous_response_id, r1.id);
    assert.equal(stored_fork.conversation.id, session);
    assert.notEqual(stored_fork.id, r2.id);
    const forked = await history(apiKey, session);
    assert.equal(forked.turn_count, 2);
    assert.deepEqual(forked.messages.map((m) => m.content.split(':')[0]),
      ['First turn', 'Echo of 1 messages', 'Stored fork', 'Echo of 3 messages']);
    assert.equal(forked.messages[2].sibling_turn_ids.length, 2);
    assert.equal((await c.responses.retrieve(stored_fork.id)).previous_response_id, r1.id);
    const after_r2 = await c.responses.create({
      model: 'ok@resp-chain', input: 'Third turn', previous_response_id: r2.id, stream: true,
    });
    let created;
    let completed;
    for await (const event of after_r2) {
      if (event.type === 'response.created') created = event.response;
      if (event.type === 'response.completed') completed = event.response;
    }
    assert.equal(created.id, completed.id);
    assert.match(completed.output[0].content[0].text, /^Echo of 5 messages: Third turn/);
    assert.equal((await c.responses.retrieve(completed.id)).previous_response_id, r2.id);
    assert.equal((await history(apiKey, session)).turn_count, 3);
    await assert.rejects(
      c.responses.create({ model: 'ok@resp-chain', input: 'x', previous_response_id: 'resp_9_nosuch' }),
      OpenAI.NotFoundError);
  });

  it('chains responses.create by conversation, and lists its items', async () => {
    const apiKey = await createKey('conversations', {}, 'resp-conv');
    const c = openai(apiKey);
    const conv = await c.conversations.create({ metadata: { topic: 'tests' } });
    assert.equal(conv.object, 'conversation');
    assert.match(conv.id, /^conv_/);
    assert.deepEqual(conv.metadata, { topic: 'tests' });
    // Before its first turn: an empty conversation.
    assert.equal((await c.conversations.retrieve(conv.id)).id, conv.id);
    assert.deepEqual((await c.conversations.items.list(conv.id)).data, []);

    const r1 = await c.responses.create({ model: 'ok@resp-conv', input: 'One', conversation: conv.id });
    assert.match(r1.output_text, /^Echo of 1 messages: One/);
    assert.equal(r1.conversation.id, conv.id);
    const r2 = await c.responses.create({
      model: 'ok@resp-conv', input: [{ role: 'user', content: 'Two' }], conversation: { id: conv.id },
    });
    assert.match(r2.output_text, /^Echo of 3 messages: Two/);

    // Items, oldest first, a page of one at a time: the SDK follows the pages.
    const items = [];
    for await (const item of c.conversations.items.list(conv.id, { order: 'asc', limit: 1 })) {
      items.push(item);
    }
    assert.deepEqual(items.map((i) => i.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(items[0].content[0].type, 'input_text');
    assert.equal(items[0].content[0].text, 'One');
    assert.equal(items[3].content[0].type, 'output_text');
    assert.equal(items[3].content[0].text, r2.output_text);
    assert.equal(items[3].id, r2.output[0].id);
    // OpenAI's default order: newest first.
    const newest = await c.conversations.items.list(conv.id);
    assert.equal(newest.data[0].content[0].text, r2.output_text);

    // The conversation is the chatd session of that id.
    assert.equal((await history(apiKey, conv.id)).turn_count, 2);

    const gone = await c.conversations.delete(conv.id);
    assert.equal(gone.deleted, true);
    const res = await fetch(`${stack.base}/v1/sessions/${conv.id}/history`,
      { headers: { Authorization: `Bearer ${apiKey}` } });
    assert.equal(res.status, 404);
    // Gone for the key that made it too, as at OpenAI.
    await assert.rejects(c.conversations.retrieve(conv.id), OpenAI.NotFoundError);
    await assert.rejects(c.conversations.items.list(conv.id), OpenAI.NotFoundError);
    await assert.rejects(c.conversations.delete(conv.id), OpenAI.NotFoundError);
  });

  it('names each of two overlapping responses of one conversation by its own turn', async () => {
    const apiKey = await createKey('overlap', {}, 'resp-overlap');
    const c = openai(apiKey);
    const conv = await c.conversations.create();
    // Slow answers: both responses look the conversation up before either
    // turn is stored, and chat-server then stores them one after the other.
    const [a, b] = await Promise.all(['Alpha', 'Beta'].map((input) =>
      c.responses.create({ model: 'slow:30@resp-overlap', input, conversation: conv.id })));
    assert.notEqual(a.id, b.id);
    for (const r of [a, b]) {
      assert.equal((await c.responses.retrieve(r.id)).output_text, r.output_text);
    }
    assert.equal((await history(apiKey, conv.id)).turn_count, 2);
  });

  it('streams responses.create with OpenAI\'s events', async () => {
    const c = openai(await createKey('stream', {}, 'resp-stream'));
    const first = await c.responses.create({ model: 'ok@resp-stream', input: 'Before' });
    const stream = await c.responses.create({
      model: 'ok@resp-stream', input: 'Stream me', previous_response_id: first.id, stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.includes('response.output_text.done'));
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    assert.ok(deltas.length >= 2, `${deltas.length} deltas`);
    const text = deltas.map((e) => e.delta).join('');
    assert.match(text, /^Echo of 3 messages: Stream me/);
    assert.equal(events.find((e) => e.type === 'response.output_text.done').text, text);
    const done = events.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].text, text);
    assert.equal(events[0].response.id, done.id);
    events.forEach((e, i) => assert.equal(e.sequence_number, i));
    // Stored: the next response continues from it.
    const next = await c.responses.create({ model: 'ok@resp-stream', input: 'After', previous_response_id: done.id });
    assert.match(next.output_text, /^Echo of 5 messages: After/);

    // Not stored, streamed through the stateless path.
    const loose = await c.responses.create({ model: 'ok@resp-stream', input: 'Loose', store: false, stream: true });
    let looseText = '';
    for await (const event of loose) {
      if (event.type === 'response.output_text.delta') looseText += event.delta;
    }
    assert.match(looseText, /^Echo of 1 messages: Loose/);
  });

  it('aborting a streamed response cancels the upstream call and stores no turn', async () => {
    const apiKey = await createKey('abort', {}, 'resp-abort');
    const c = openai(apiKey);
    const conv = await c.conversations.create();
    const model = 'hold@resp-abort';
    const controller = new AbortController();
    const stream = await c.responses.create(
      { model, input: 'Hold on', conversation: conv.id, stream: true },
      { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    let got = '';
    while (!got.includes('Echo')) {
      const { value, done } = await iterator.next();
      assert.ok(!done, 'the stream ended early');
      if (value.type === 'response.output_text.delta') got += value.delta;
    }
    controller.abort();
    const after = await iterator.next().catch((e) => ({ error: e }));
    assert.ok(after.done || after.error, 'the stream went on after abort()');
    let stats;
    await poll(async () => {
      stats = await upstreamStats(model);
      return stats.closed_early >= 1;
    });
    assert.equal(stats.closed_early, 1);
    assert.deepEqual((await c.conversations.items.list(conv.id)).data, []);
  });

  it('stores an empty conversation as a session every key of the tenant sees', async () => {
    const keyA = await createKey('conv-a', {}, 'conv-shared');
    const keyB = await createKey('conv-b', {}, 'conv-shared');
    const conv = await openai(keyA).conversations.create({ metadata: { topic: 'shared' } });
    assert.equal(conv.object, 'conversation');
    assert.match(conv.id, /^conv_/);
    assert.deepEqual(conv.metadata, { topic: 'shared' });

    // Key B, same tenant: the conversation, empty.
    const b = openai(keyB);
    const seen = await b.conversations.retrieve(conv.id);
    assert.equal(seen.id, conv.id);
    assert.equal(seen.created_at, conv.created_at);
    assert.deepEqual((await b.conversations.items.list(conv.id)).data, []);
    // And through the REST API: a session with no messages, listed.
    const empty = await history(keyB, conv.id);
    assert.deepEqual(empty.messages ?? [], []);
    const res = await fetch(`${stack.base}/v1/sessions`,
      { headers: { Authorization: `Bearer ${keyB}` } });
    assert.equal(res.status, 200);
    const listed = (await res.json()).sessions.find((s) => s.session_id === conv.id);
    assert.ok(listed, 'the conversation is not in GET /v1/sessions');
    assert.equal(listed.turns ?? 0, 0);

    // Another tenant: 404.
    const other = openai(await createKey('conv-other', {}, 'conv-elsewhere'));
    await assert.rejects(other.conversations.retrieve(conv.id),
      (e) => e instanceof OpenAI.NotFoundError);

    // B's first response lands in it.
    const r = await b.responses.create({ model: 'ok@conv-shared', input: 'Hi', conversation: conv.id });
    assert.equal(r.conversation.id, conv.id);
    assert.equal((await openai(keyA).conversations.items.list(conv.id)).data.length, 2);
  });

  it('answers 404 for another tenant\'s conversation and responses', async () => {
    const owner = openai(await createKey('owner', {}, 'resp-owner'));
    const other = openai(await createKey('intruder', {}, 'resp-intruder'));
    const conv = await owner.conversations.create();
    const empty = await owner.conversations.create();
    const r = await owner.responses.create({ model: 'ok@resp-iso', input: 'Secret', conversation: conv.id });
    const notFound = (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, String(e));
      assert.equal(e.status, 404);
      return true;
    };
    for (const id of [conv.id, empty.id]) {
      await assert.rejects(other.conversations.retrieve(id), notFound);
      await assert.rejects(other.conversations.items.list(id), notFound);
      await assert.rejects(other.conversations.delete(id), notFound);
      await assert.rejects(
        other.responses.create({ model: 'ok@resp-iso', input: 'Peek', conversation: id }), notFound);
    }
    await assert.rejects(other.responses.retrieve(r.id), notFound);
    await assert.rejects(
      other.responses.create({ model: 'ok@resp-iso', input: 'Peek', previous_response_id: r.id }),
      notFound);
    await assert.rejects(
      other.responses.create({ model: 'ok@resp-iso', input: 'Peek', previous_response_id: r.id, store: false }),
      notFound);
    // A key chatd does not know is refused before any id is made.
    const bad = openai('chatd_nosuchid_0123456789abcdef');
    await assert.rejects(bad.conversations.create(), OpenAI.AuthenticationError);
    await assert.rejects(bad.responses.create({ model: 'ok@resp-iso', input: 'x' }),
      OpenAI.AuthenticationError);
    // The owner's conversation is untouched.
    const items = await owner.conversations.items.list(conv.id);
    assert.equal(items.data.length, 2);
  });
});
