// Resumable streams through the gateway, on real sockets, and the same on
// chat-server's own HTTP port (which answers ChatStream and ResumeStream
// without gRPC): SSE `id:` lines,
// GET /v1/sessions/{id}/stream with the Last-Event-ID header (or the
// last_event_id query parameter), NOT_FOUND for an unknown answer, :cancel,
// and the JS client's transparent resume when a connection drops mid-answer.
// Strategy: a slow echo provider (one word per delta, 20ms apart) keeps an
// answer running long enough to drop its connection after the first event;
// what the resumed stream sends is checked against the `done` event and the
// stored history, so "the rest, once and in order" is a fact, not a timing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, words } from './harness.mjs';
import { ChatClient } from '../../clients/js/chat-client.js';

function parseSse(text) {
  return text.split('\n\n').filter((b) => b.trim()).map((block) => ({
    event: /^event: (.*)$/m.exec(block)?.[1],
    id: /^id: (.*)$/m.exec(block)?.[1],
    data: JSON.parse([...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n')),
  }));
}

// Starts a stream, reads its first event, then drops the connection.
async function startAndDrop(base, session, message) {
  const controller = new AbortController();
  const res = await fetch(`${base}/v1/chat:stream`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message, session_id: session }),
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let text = '';
  while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
  controller.abort();
  await reader.read().catch(() => {});
  return parseSse(text.slice(0, text.indexOf('\n\n') + 2))[0];
}

function seqOf(id) { return Number(id.slice(id.lastIndexOf(':') + 1)); }

for (const embedded of [false, true]) describe(
  embedded ? "resumable streams on chat-server's own HTTP port" : 'resumable streams', () => {
  let stack;
  before(async () => { stack = await startStack({ echoDelay: '20ms', embedded }); });
  after(async () => { await stack?.stop(); });

  it('Last-Event-ID resumes after the last event seen: the rest, once, in order', async () => {
    const first = await startAndDrop(stack.base, 'r1', words(15));
    assert.equal(first.event, 'delta');
    assert.match(first.id, /^[0-9a-f]+:1$/);
    const res = await fetch(`${stack.base}/v1/sessions/r1/stream`,
      { headers: { 'Last-Event-ID': first.id, Accept: 'text/event-stream' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const events = parseSse(await res.text());
    const done = events.at(-1);
    assert.equal(done.event, 'done');
    const rest = events.slice(0, -1).map((e) => e.data.text).join('');
    assert.equal(first.data.text + rest, done.data.response);
    let last = seqOf(first.id);
    for (const e of events) {
      assert.ok(seqOf(e.id) > last, `${e.id} after ${last}`);
      last = seqOf(e.id);
    }
    const history = await (await fetch(`${stack.base}/v1/sessions/r1/history`)).json();
    assert.equal(history.turn_count, 1);
    assert.equal(history.messages[1].content, done.data.response);
  });

  it('the last_event_id query parameter does the same, after the answer ended too', async () => {
    const first = await startAndDrop(stack.base, 'r2', words(5));
    // A client's own retry loop: the answer may still run; the resumed
    // stream ends with `done` either way.
    const res = await fetch(
      `${stack.base}/v1/sessions/r2/stream?last_event_id=${encodeURIComponent(first.id)}`);
    const events = parseSse(await res.text());
    assert.equal(events.at(-1).event, 'done');
    // Again, now that it has ended: the same events.
    const again = parseSse(await (await fetch(
      `${stack.base}/v1/sessions/r2/stream?last_event_id=${encodeURIComponent(first.id)}`)).text());
    assert.equal(again.at(-1).event, 'done');
    assert.equal(again.at(-1).data.response, events.at(-1).data.response);
    assert.equal(again.slice(0, -1).map((e) => e.data.text).join(''),
      events.slice(0, -1).map((e) => e.data.text).join(''));
  });

  it('the last_event_id field wins over the Last-Event-ID header', async () => {
    const first = await startAndDrop(stack.base, 'r6', words(6));
    // The header names an answer that does not exist; the field, the real one.
    const res = await fetch(
      `${stack.base}/v1/sessions/r6/stream?last_event_id=${encodeURIComponent(first.id)}`,
      { headers: { 'Last-Event-ID': 'deadbeef:3' } });
    assert.equal(res.status, 200);
    const events = parseSse(await res.text());
    assert.equal(events.at(-1).event, 'done');
    assert.equal(first.data.text + events.slice(0, -1).map((e) => e.data.text).join(''),
      events.at(-1).data.response);
  });

  it('an unknown or expired answer is 404; a malformed id 400', async () => {
    const none = await fetch(`${stack.base}/v1/sessions/never/stream`);
    assert.equal(none.status, 404);
    const unknown = await fetch(`${stack.base}/v1/sessions/never/stream`,
      { headers: { 'Last-Event-ID': 'deadbeef:3' } });
    assert.equal(unknown.status, 404);
    const bad = await fetch(`${stack.base}/v1/sessions/never/stream`,
      { headers: { 'Last-Event-ID': 'nonsense' } });
    assert.equal(bad.status, 400);
    const cancel = await fetch(`${stack.base}/v1/sessions/never:cancel`, { method: 'POST' });
    assert.equal(cancel.status, 404);
  });

  it('the JS client resumes transparently when the connection drops mid-answer', async () => {
    // A fetch whose first stream response breaks after its first chunk, as
    // a lost connection does.
    let broken = false;
    const resumes = [];
    const flakyFetch = async (url, init) => {
      const res = await fetch(url, init);
      if (String(url).endsWith('/stream')) resumes.push(init.headers['Last-Event-ID']);
      if (broken || !String(url).endsWith(':stream')) return res;
      broken = true;
      const reader = res.body.getReader();
      const body = new ReadableStream({
        async pull(controller) {
          const { value } = await reader.read();
          controller.enqueue(value);
          await reader.cancel();
          controller.error(new TypeError('network error'));
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const client = new ChatClient(stack.base, { sessionId: 'r3', fetch: flakyFetch });
    let text = '';
    const turn = await client.chatStream(words(12), (t) => { text += t; });
    assert.ok(broken);
    assert.equal(resumes.length, 1);
    assert.match(resumes[0], /:\d+$/);
    assert.equal(text, turn.response);
    assert.equal(turn.turn_count, 1);
    const history = await client.getHistory();
    assert.equal(history.turn_count, 1);
  });

  it('the JS client resumes after a reload from lastEventId, and cancelStream stops an answer', async () => {
    const first = await startAndDrop(stack.base, 'r4', words(10));
    const client = new ChatClient(stack.base, { sessionId: 'r4' });
    let text = first.data.text;
    const turn = await client.resumeStream((t) => { text += t; }, { lastEventId: first.id });
    assert.equal(text, turn.response);

    await startAndDrop(stack.base, 'r5', words(300));
    const other = new ChatClient(stack.base, { sessionId: 'r5' });
    assert.deepEqual(await other.cancelStream(), { session_id: 'r5', status: 'cancelled' });
    await assert.rejects(other.resumeStream(() => {}), (err) => err.status === 499);
    assert.equal((await fetch(`${stack.base}/v1/sessions/r5/history`)).status, 404);
  });
});
