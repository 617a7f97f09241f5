// clients/js/chat-client.js from Node against the real gateway: the
// template's API, errors with status, SSE streaming, aborting a stream.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStack, SOURCE_DIR, words } from './harness.mjs';

const { ChatClient, ChatError } = await import(
  pathToFileURL(join(SOURCE_DIR, 'clients/js/chat-client.js')).href);

describe('ChatClient', () => {
  let stack;
  before(async () => { stack = await startStack({ echoDelay: '20ms' }); });
  after(async () => { await stack?.stop(); });

  it('keeps the template API: chat, getHistory, reset, sessionId', async () => {
    const client = new ChatClient(stack.base);
    assert.match(client.sessionId, /^session-/);
    assert.notEqual(client.sessionId, new ChatClient(stack.base).sessionId);
    const reply = await client.chat('Hello');
    assert.equal(typeof reply, 'string');
    assert.ok(reply.includes('Hello'));
    const history = await client.getHistory();
    assert.equal(history.messages.length, 2);
    const reset = await client.reset();
    assert.equal(reset.status, 'reset');
    assert.equal(reset.previous_turns, 1);
  });

  it('streams over SSE, calling onChunk per delta', async () => {
    const client = new ChatClient(stack.base, { sessionId: 'js-stream' });
    const chunks = [];
    const turn = await client.chatStream('stream me please', (t) => chunks.push(t));
    assert.ok(chunks.length > 1);
    assert.equal(chunks.join(''), turn.response);
    assert.equal(turn.turn_count, 1);
    const text = await client.chatStreamText('and the template way', () => {});
    assert.ok(text.includes('and the template way'));
  });

  it('throws ChatError with the HTTP status and message', async () => {
    const client = new ChatClient(stack.base, { sessionId: 'never-used' });
    await assert.rejects(client.getHistory(), (e) => {
      assert.ok(e instanceof ChatError);
      assert.equal(e.status, 404);
      assert.equal(e.code, 5);
      assert.ok(e.message.length > 0);
      return true;
    });
    await assert.rejects(new ChatClient(stack.base).chat(''), (e) => e.status === 400);
  });

  it('stops a stream with an AbortSignal, storing nothing', async () => {
    const client = new ChatClient(stack.base, { sessionId: 'js-abort' });
    const controller = new AbortController();
    let chunks = 0;
    await assert.rejects(
      client.chatStream(words(300), () => {
        chunks += 1;
        if (chunks === 2) controller.abort();
      }, { signal: controller.signal }),
      (e) => e.name === 'AbortError');
    await client.chat('after');  // Runs after the aborted turn ended.
    const history = await client.getHistory();
    assert.equal(history.turn_count, 1);
  });

  it('lists sessions and stats, and sends an API key', async () => {
    const seen = [];
    const client = new ChatClient(stack.base, {
      apiKey: 'k-1',
      fetch: (url, init) => { seen.push(init.headers.Authorization); return fetch(url, init); },
    });
    // chat-server refuses a key it does not know, which proves it got it.
    await assert.rejects(client.listSessions({ pageSize: 1 }), (e) => e.status === 401);
    await assert.rejects(client.stats(), (e) => e.status === 401);
    assert.deepEqual(seen, ['Bearer k-1', 'Bearer k-1']);
    const anonymous = new ChatClient(stack.base);
    const page = await anonymous.listSessions({ pageSize: 1 });
    assert.equal(page.sessions.length, 1);
  });

  it('creates an empty session and makes it the client\'s own', async () => {
    const client = new ChatClient(stack.base, { systemPrompt: 'be terse' });
    const created = await client.createSession({ title: 'Empty' });
    assert.match(created.session.session_id, /^s-/);
    assert.equal(created.session.turns ?? 0, 0);
    assert.equal(created.session.title, 'Empty');
    assert.equal(created.system_prompt, 'be terse');
    assert.equal(client.sessionId, created.session.session_id);
    const history = await client.getHistory();
    assert.deepEqual(history.messages ?? [], []);
    assert.equal(history.system_prompt, 'be terse');
    await client.chat('first words');
    assert.equal((await client.getHistory()).messages.length, 2);

    const named = await client.createSession({ sessionId: 'js-created' });
    assert.equal(named.session.session_id, 'js-created');
    await assert.rejects(client.createSession({ sessionId: 'js-created' }),
      (e) => e instanceof ChatError && e.status === 409);
    await assert.rejects(client.createSession({ sessionId: 'bad id' }),
      (e) => e.status === 400 && /session_id/.test(e.message));
  });

  it('exports a session, imports it under another id, and exports them all', async () => {
    const client = new ChatClient(stack.base, { sessionId: 'js-export' });
    await client.chat('to be moved');
    const exported = await client.exportSession();
    assert.equal(exported.session.session_id, 'js-export');
    assert.equal(exported.session.messages.length, 2);
    const markdown = await client.exportSession({ format: 'markdown' });
    assert.ok(markdown.markdown.includes('to be moved'));

    exported.session.session_id = 'js-imported';
    const imported = await client.importSession(exported);
    assert.equal(imported.session.session_id, 'js-imported');
    assert.equal(imported.session.turns, 1);
    await assert.rejects(client.importSession(exported.session), (e) => e.status === 409);
    await client.importSession(exported.session, { replace: true });
    const again = await client.exportSession({ sessionId: 'js-imported' });
    assert.deepEqual(again.session, exported.session);

    const ids = [];
    const count = await client.exportSessions((s) => ids.push(s.session_id));
    assert.equal(count, ids.length);
    assert.ok(ids.includes('js-export') && ids.includes('js-imported'), ids.join());
    await assert.rejects(client.exportSession({ sessionId: 'js-nowhere' }),
      (e) => e.status === 404);
  });

  it('reads, resets and deletes any session by its id', async () => {
    await new ChatClient(stack.base, { sessionId: 'js-other' }).chat('kept elsewhere');
    const client = new ChatClient(stack.base, { sessionId: 'js-mine' });
    const history = await client.getHistory({ sessionId: 'js-other' });
    assert.equal(history.session_id, 'js-other');
    assert.equal(history.messages[0].content, 'kept elsewhere');
    assert.equal((await client.reset({ sessionId: 'js-other' })).previous_turns, 1);
    assert.equal((await client.deleteSession({ sessionId: 'js-other' })).status, 'cleared');
    await assert.rejects(client.getHistory({ sessionId: 'js-other' }), (e) => e.status === 404);
    // The client's own session is untouched by all of that.
    assert.equal(client.sessionId, 'js-mine');
    assert.equal(client.rateLimit, undefined, 'no key, no limits');
  });

  it('sends idempotencyKey as Idempotency-Key: a retry gets the same turn', async () => {
    const sent = [];
    const client = new ChatClient(stack.base, {
      sessionId: 'js-idem',
      fetch: (url, init) => { sent.push(init.headers['Idempotency-Key']); return fetch(url, init); },
    });
    const first = await client.chatTurn('only once', { idempotencyKey: 'js-key-1' });
    const again = await client.chatTurn('only once', { idempotencyKey: 'js-key-1' });
    assert.deepEqual(again, first);
    // A stream with the same key replays the stored answer.
    const chunks = [];
    const streamed = await client.chatStream('only once', (t) => chunks.push(t),
      { idempotencyKey: 'js-key-1' });
    assert.equal(chunks.join(''), first.response);
    assert.equal(streamed.turn_count, 1);
    assert.equal((await client.getHistory()).turn_count, 1);
    // The key with another message: a conflict, with the reason in details.
    await assert.rejects(client.chatTurn('something else', { idempotencyKey: 'js-key-1' }), (e) => {
      assert.ok(e instanceof ChatError);
      assert.equal(e.status, 409);
      assert.equal(e.code, 9);
      assert.equal(e.details[0]?.reason, 'IDEMPOTENCY_KEY_REUSED');
      return true;
    });
    // Without the option no header goes out.
    await client.chatTurn('no key');
    // (The fourth call is getHistory's.)
    assert.deepEqual(sent, ['js-key-1', 'js-key-1', 'js-key-1', undefined, 'js-key-1', undefined]);
    assert.equal((await client.getHistory()).turn_count, 2);
  });
});

describe('ChatClient rate-limit headers', () => {
  const limitHeaders = {
    'x-ratelimit-limit-requests': '2', 'x-ratelimit-remaining-requests': '0',
    'x-ratelimit-reset-requests': '41s',
  };
  it('keeps the last answer\'s x-ratelimit headers and a 429\'s Retry-After', async () => {
    let status = 200;
    const client = new ChatClient('http://127.0.0.1:9', {
      fetch: async () => (status === 200
        ? Response.json({ sessions: [], next_page_token: '' }, { headers: limitHeaders })
        : Response.json({ code: 8, message: 'requests_per_minute exceeded', details: [] },
          { status, headers: { ...limitHeaders, 'retry-after': '41' } })),
    });
    await client.listSessions();
    assert.deepEqual(client.rateLimit,
      { limitRequests: 2, remainingRequests: 0, resetRequests: '41s' });
    status = 429;
    await assert.rejects(client.chat('hi'), (e) => {
      assert.equal(e.status, 429);
      assert.equal(e.retryAfter, 41);
      return true;
    });
  });
});

// Byte streams the client may meet behind other servers and proxies, given
// through its `fetch` option: no gateway needed.
function fakeFetch(chunks, onCancel = () => {}) {
  return async () => new Response(new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      controller.close();
    },
    cancel: onCancel,
  }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

describe('ChatClient stream parsing', () => {
  it('keeps an event whose CRLF is split between two chunks', async () => {
    const client = new ChatClient('http://unused', {
      fetch: fakeFetch(['event: delta\r', '\ndata: {"text":"a"}\r\n\r\n',
        'event: done\r\ndata: {"response":"a","turn_count":1}\r\n\r\n']),
    });
    const chunks = [];
    const turn = await client.chatStream('x', (t) => chunks.push(t));
    assert.deepEqual(chunks, ['a']);
    assert.equal(turn.response, 'a');
  });

  it('chatStreamText keeps a character cut by the end, and cancels when the consumer throws', async () => {
    const euro = new TextEncoder().encode('€');  // 3 bytes
    const bytes = [new TextEncoder().encode('ab'), euro.slice(0, 2)];
    const client = new ChatClient('http://unused', {
      fetch: async () => new Response(new ReadableStream({
        start(controller) { for (const b of bytes) controller.enqueue(b); controller.close(); },
      }), { status: 200 }),
    });
    const text = await client.chatStreamText('x');
    assert.equal(text, 'ab\uFFFD');  // The cut character shows, as TextDecoder ends it.

    let cancelled = false;
    const throwing = new ChatClient('http://unused', {
      fetch: async () => new Response(new ReadableStream({
        pull(controller) { controller.enqueue(new TextEncoder().encode('chunk')); },
        cancel() { cancelled = true; },
      }), { status: 200 }),
    });
    await assert.rejects(throwing.chatStreamText('x', () => { throw new Error('stop'); }), /stop/);
    assert.ok(cancelled, 'the stream was cancelled');
  });
});
