// Streamed answers: the template's raw text on /chat-stream (read the way
// its browser ChatClient reads it), Server-Sent Events and ndjson on
// /v1/chat:stream, errors before and after the first byte, flushing, and a
// client disconnect detaching from the turn (which runs on for a resume;
// :cancel stops it).
// Strategy: a slow echo provider (one word per delta) makes a stream last
// long enough that "the first delta arrived while the stream was still
// open" is a fact we can observe without timing anything.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startStack, postJson, words, poll } from './harness.mjs';

// The template's ChatClient.chatStream, verbatim in spirit: fetch, a reader,
// TextDecoder, concatenation.
async function templateChatStream(base, message, sessionId, onChunk) {
  const response = await fetch(`${base}/chat-stream`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message, session_id: sessionId }),
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let fullResponse = '';
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = decoder.decode(value, { stream: true });
    fullResponse += chunk;
    onChunk(chunk);
  }
  return { response, fullResponse };
}

function parseSse(text) {
  return text.split('\n\n').filter((b) => b.trim()).map((block) => {
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
    return { event, data: JSON.parse(data) };
  });
}

describe('streaming', () => {
  let stack;
  before(async () => { stack = await startStack({ echoDelay: '30ms' }); });
  after(async () => { await stack?.stop(); });

  it('/chat-stream sends raw text chunks the template client concatenates', async () => {
    const chunks = [];
    const { response, fullResponse } = await templateChatStream(
      stack.base, 'Hello streaming world', 'stream-1', (c) => chunks.push(c));
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/plain/);
    assert.equal(response.headers.get('transfer-encoding'), 'chunked');
    assert.ok(chunks.length > 1, `expected several chunks, got ${chunks.length}`);
    const history = await (await fetch(stack.base + '/history/stream-1')).json();
    assert.equal(history.messages[1].content, fullResponse);
    assert.ok(fullResponse.includes('Hello streaming world'));
  });

  it('/chat-stream errors before the first byte are ordinary HTTP errors', async () => {
    const res = await postJson(stack.base, '/chat-stream', { session_id: 'x' });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.code, 3);
    assert.match(body.message, /message/);
  });

  it('/chat-stream errors after the first byte are appended as "\\nError: ..."', async () => {
    const res = await postJson(stack.base, '/chat-stream',
      { message: words(400), session_id: 'late-error' }, { 'Grpc-Timeout': '3S' });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /w0 w1/);
    assert.match(text, /\nError: .+$/);
    // The failed turn was not stored.
    assert.equal((await fetch(stack.base + '/history/late-error')).status, 404);
  });

  it('/v1/chat:stream sends SSE deltas then done with the metadata', async () => {
    const res = await postJson(stack.base, '/v1/chat:stream', { message: 'one two three', session_id: 'sse-1' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const text = await res.text();
    assert.ok(text.startsWith('event: delta\ndata: {"text":'));
    const events = parseSse(text);
    const done = events.at(-1);
    assert.equal(done.event, 'done');
    const deltas = events.slice(0, -1);
    assert.ok(deltas.length > 1);
    assert.ok(deltas.every((e) => e.event === 'delta' && typeof e.data.text === 'string'));
    assert.equal(deltas.map((e) => e.data.text).join(''), done.data.response);
    assert.equal(done.data.session_id, 'sse-1');
    assert.equal(done.data.turn_count, 1);
    assert.equal(typeof done.data.usage.output_tokens, 'number');
    assert.ok(done.data.stop_reason);
  });

  it('flushes each event as it arrives: the first delta comes before the end', async () => {
    const res = await postJson(stack.base, '/v1/chat:stream',
      { message: words(100), session_id: 'flush-1' });
    const reader = res.body.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /^event: delta\n/);
    assert.ok(!first.includes('event: done'), 'the whole stream came at once');
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.match(rest, /event: done\n/);
  });

  it('/v1/chat:stream reports a failure mid-stream as event: error', async () => {
    const res = await postJson(stack.base, '/v1/chat:stream',
      { message: words(400), session_id: 'sse-err' }, { 'Grpc-Timeout': '3S' });
    assert.equal(res.status, 200);
    const events = parseSse(await res.text());
    const last = events.at(-1);
    assert.equal(last.event, 'error');
    assert.equal(last.data.code, 4);
    assert.deepEqual(last.data.details, []);
    assert.equal(events[0].event, 'delta');
  });

  it('/v1/chat:stream errors before the first event are HTTP errors', async () => {
    const res = await postJson(stack.base, '/v1/chat:stream', { message: 'x' });
    assert.equal(res.status, 400);
    assert.match((await res.json()).message, /session_id/);
  });

  it('Accept: application/x-ndjson gets grpc-gateway result lines', async () => {
    const res = await postJson(stack.base, '/v1/chat:stream',
      { message: 'nd json', session_id: 'nd-1' }, { Accept: 'application/x-ndjson' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.every((l) => 'result' in l));
    assert.ok('delta' in lines[0].result);
    assert.equal(lines.at(-1).result.done.turn_count, 1);
  });

  it('ndjson failures end with an {"error": ...} line', async () => {
    const res = await postJson(stack.base, '/v1/chat:stream',
      { message: words(400), session_id: 'nd-err' },
      { Accept: 'application/x-ndjson', 'Grpc-Timeout': '3S' });
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.at(-1).error.code, 4);
    const early = await postJson(stack.base, '/v1/chat:stream', { session_id: 'nd' },
      { Accept: 'application/x-ndjson' });
    assert.equal(early.status, 400);
    assert.equal(JSON.parse((await early.text()).trim()).error.code, 3);
  });

  it('a client that disconnects detaches: the turn runs on and a resume gets the rest', async () => {
    await postJson(stack.base, '/chat', { message: 'kept', session_id: 'cancel-1' });
    const controller = new AbortController();
    const res = await fetch(stack.base + '/v1/chat:stream', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: words(20), session_id: 'cancel-1' }),
      signal: controller.signal,
    });
    const reader = res.body.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /^event: delta/);
    const id = /^id: (.*)$/m.exec(first)[1];
    controller.abort();
    await reader.read().catch(() => {});
    const rest = await fetch(stack.base + '/v1/sessions/cancel-1/stream',
      { headers: { 'Last-Event-ID': id } });
    assert.equal(rest.status, 200);
    const events = parseSse(await rest.text());
    assert.equal(events.at(-1).event, 'done');
    const history = await (await fetch(stack.base + '/history/cancel-1')).json();
    assert.equal(history.turn_count, 2);
    assert.equal(history.messages[3].content, events.at(-1).data.response);
  });

  it('a client that disconnects from /chat-stream detaches too; :cancel stops the turn', async () => {
    const controller = new AbortController();
    const res = await fetch(stack.base + '/chat-stream', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: words(300), session_id: 'cancel-2' }),
      signal: controller.signal,
    });
    const reader = res.body.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => {});
    const cancelled = await fetch(stack.base + '/v1/sessions/cancel-2:cancel', { method: 'POST' });
    assert.equal(cancelled.status, 200);
    assert.deepEqual(await cancelled.json(), { session_id: 'cancel-2', status: 'cancelled' });
    // Turns of one session run in arrival order: this one starts after the
    // cancelled one ended, which stored nothing.
    await postJson(stack.base, '/chat', { message: 'after', session_id: 'cancel-2' });
    const history = await (await fetch(stack.base + '/history/cancel-2')).json();
    assert.equal(history.turn_count, 1);
    assert.equal(history.messages[0].content, 'after');
  });
});

describe('gateway shutdown', () => {
  let stack;
  before(async () => { stack = await startStack({ echoDelay: '20ms' }); });
  after(async () => { await stack?.stop(); });

  it('lets a running stream finish after SIGTERM, then exits 0', async () => {
    const res = await postJson(stack.base, '/v1/chat:stream',
      { message: words(30), session_id: 'drain-1' });
    const reader = res.body.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    const exited = new Promise((resolve) => stack.gateway.child.once('exit', (code) => resolve(code)));
    stack.gateway.child.kill('SIGTERM');
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.match(text, /event: done\n/);
    assert.equal(await exited, 0);
  });
});

describe('gateway shutdown with keep-alive connections', () => {
  let stack;
  before(async () => { stack = await startStack({ echoDelay: '20ms' }); });
  after(async () => { await stack?.stop(); });

  it('answers new requests on open connections 503 and closes them while draining', async () => {
    // An idle keep-alive connection, opened before the signal.
    const socket = net.connect(stack.gateway.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    // A running stream keeps the gateway draining for a while.
    // 150 words at 20 ms: 3 s, inside the 10 s grace and far longer than
    // the probe below needs.
    const res = await postJson(stack.base, '/v1/chat:stream',
      { message: words(150), session_id: 'drain-2' });
    const reader = res.body.getReader();
    await reader.read();
    const exited = new Promise((resolve) => stack.gateway.child.once('exit', (code) => resolve(code)));
    stack.gateway.child.kill('SIGTERM');
    // The gateway logs it once new requests are refused.
    assert.ok(await poll(() => /finishing running requests/.test(stack.gateway.log())),
      stack.gateway.log());
    let reply = '';
    socket.on('data', (d) => { reply += d.toString(); });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /stats HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    assert.match(reply, /^HTTP\/1\.1 503 /);
    assert.match(reply, /Connection: close/i);
    assert.match(reply, /shutting down/);
    for (;;) { if ((await reader.read()).done) break; }
    assert.equal(await exited, 0);
  });
});
