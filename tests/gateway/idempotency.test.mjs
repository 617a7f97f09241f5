// Idempotent turns over REST (issue 13, point 1), through the real
// chat-gateway and chat-server: the `Idempotency-Key` header on the chat
// routes. chat-server talks to the fake upstream (tests/fake_upstream,
// Anthropic's wire format), which counts the requests each model string
// gets (/_stats?key=MODEL): every test uses its own model tag, so "one
// provider call" is read there, not inferred.
//
// What a retrying client must see: a repeat gets the same answer and the
// model is asked once; a streamed repeat replays it; a repeat while the first
// still runs waits for it; a key reused for another message is 409 with the
// gateway's error shape; and one tenant's key is not seen by another tenant.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startProcess, startStack, postJson, SOURCE_DIR, poll } from './harness.mjs';

const ADMIN_KEY = 'idempotency-admin-key-0123456789';
const auth = (key) => (key ? { Authorization: `Bearer ${key}` } : {});

describe('Idempotency-Key through chat-gateway', () => {
  let upstream;
  let upstreamBase;
  let stack;
  let tenantA;
  let tenantB;

  // A key of a new tenant (admin API), sent as Bearer.
  async function newKey(tenant) {
    const res = await postJson(stack.base, '/v1/admin/keys', { tenant, name: 'idem' },
      auth(ADMIN_KEY));
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()).key;
  }

  // How many requests the fake upstream got for `model`.
  async function attempts(model) {
    const res = await fetch(`${upstreamBase}/_stats?key=${encodeURIComponent(model)}`);
    return (await res.json()).attempts ?? 0;
  }

  // One POST with an Idempotency-Key; resolves to {status, body (parsed)}.
  async function post(path, body, idempotencyKey, key = tenantA) {
    const headers = { ...auth(key) };
    if (idempotencyKey !== undefined) headers['Idempotency-Key'] = idempotencyKey;
    const res = await postJson(stack.base, path, body, headers);
    const text = await res.text();
    let parsed;
    try { parsed = JSON.parse(text); } catch { parsed = text; }
    return { status: res.status, body: parsed, contentType: res.headers.get('content-type') };
  }

  async function turns(session, key = tenantA) {
    const res = await fetch(`${stack.base}/v1/sessions/${session}/history`, { headers: auth(key) });
    if (res.status === 404) return 0;
    assert.equal(res.status, 200);
    return (await res.json()).turn_count;
  }

  before(async () => {
    upstream = await startProcess(process.execPath,
      [join(SOURCE_DIR, 'tests/fake_upstream/server.mjs')]);
    upstreamBase = `http://127.0.0.1:${upstream.port}`;
    stack = await startStack({
      provider: 'anthropic',
      serverArgs: ['--provider_retries=0', '--first_byte_timeout=10s', '--idle_timeout=10s'],
      serverEnv: {
        ANTHROPIC_API_KEY: 'sk-ant-test-secret',
        ANTHROPIC_BASE_URL: upstreamBase,
        CHAT_ADMIN_KEY: ADMIN_KEY,
      },
    });
    tenantA = await newKey('idem-a');
    tenantB = await newKey('idem-b');
  });
  after(async () => {
    await stack?.stop();
    await upstream?.stop();
  });

  for (const path of ['/chat', '/v1/chat']) {
    it(`${path}: a repeat gets the same answer, with one provider call`, async () => {
      const model = `ok@idem${path.replace(/\//g, '-')}`;
      const session = `idem${path.replace(/\//g, '-')}`;
      const body = { message: 'Hello there', session_id: session, model };
      const first = await post(path, body, `key${path.replace(/\//g, '-')}`);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.match(first.body.response, /^Echo of 1 messages: Hello there/);
      const second = await post(path, body, `key${path.replace(/\//g, '-')}`);
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.deepEqual(second.body, first.body);
      assert.equal(await attempts(model), 1);
      assert.equal(await turns(session), 1);
    });
  }

  it('a streamed repeat replays the stored answer (SSE and the template\'s raw text)', async () => {
    const model = 'ok@idem-stream';
    const body = { message: 'stream this answer', session_id: 'idem-stream', model };
    const first = await post('/v1/chat', body, 'key-stream');
    assert.equal(first.status, 200);
    const sse = await post('/v1/chat:stream', body, 'key-stream');
    assert.equal(sse.status, 200);
    assert.match(sse.contentType, /text\/event-stream/);
    const events = sse.body.split('\n\n').filter((e) => e.trim()).map((block) => ({
      event: /^event: (.*)$/m.exec(block)?.[1],
      data: JSON.parse(/^data: (.*)$/m.exec(block)[1]),
    }));
    const deltas = events.filter((e) => e.event === 'delta').map((e) => e.data.text);
    assert.equal(deltas.join(''), first.body.response);
    const done = events.find((e) => e.event === 'done');
    assert.equal(done.data.response, first.body.response);
    assert.equal(done.data.turn_count, 1);
    const raw = await post('/chat-stream', body, 'key-stream');
    assert.equal(raw.status, 200);
    assert.equal(raw.body, first.body.response);
    assert.equal(await attempts(model), 1);
    assert.equal(await turns('idem-stream'), 1);
  });

  it('a repeat while the first still runs waits for it and gets its answer', async () => {
    const model = 'hold@idem-running';
    const body = { message: 'wait for me', session_id: 'idem-running', model };
    const first = post('/v1/chat', body, 'key-running');
    // The first request reached the provider (bounded wait on the fake's
    // count, the event itself); the repeat then finds the key running.
    await poll(async () => (await attempts(model)) >= 1);
    assert.equal(await attempts(model), 1);
    const repeat = post('/v1/chat', body, 'key-running');
    const release = await fetch(`${upstreamBase}/_release?key=${encodeURIComponent(model)}`,
      { method: 'POST' });
    assert.equal(release.status, 200);
    const [a, b] = await Promise.all([first, repeat]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.deepEqual(b.body, a.body);
    assert.equal(await attempts(model), 1);
    assert.equal(await turns('idem-running'), 1);
  });

  it('a key reused with another message is 409 with the error shape', async () => {
    const model = 'ok@idem-reuse';
    const first = await post('/v1/chat',
      { message: 'one', session_id: 'idem-reuse', model }, 'key-reuse');
    assert.equal(first.status, 200);
    for (const [path, body] of [
      ['/v1/chat', { message: 'two', session_id: 'idem-reuse', model }],
      ['/chat', { message: 'two', session_id: 'idem-reuse', model }],
      ['/v1/chat', { message: 'one', session_id: 'idem-reuse-other', model }],
      ['/v1/chat:stream', { message: 'two', session_id: 'idem-reuse', model }],
    ]) {
      const reused = await post(path, body, 'key-reuse');
      assert.equal(reused.status, 409, `${path}: ${JSON.stringify(reused.body)}`);
      assert.match(reused.contentType, /application\/json/);
      assert.deepEqual(Object.keys(reused.body).sort(), ['code', 'details', 'message']);
      assert.equal(reused.body.code, 9);  // FAILED_PRECONDITION
      assert.match(reused.body.message, /request_id key-reuse was already used/);
      assert.deepEqual(reused.body.details, [{
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'IDEMPOTENCY_KEY_REUSED',
        domain: 'chatd',
      }]);
    }
    // The refusals asked nobody and stored nothing.
    assert.equal(await attempts(model), 1);
    assert.equal(await turns('idem-reuse'), 1);
    assert.equal(await turns('idem-reuse-other'), 0);
    // Other refusals keep their status: a header and a body id that differ
    // are INVALID_ARGUMENT, 400.
    const differ = await post('/v1/chat',
      { message: 'one', session_id: 'idem-reuse', model, request_id: 'other' }, 'key-reuse');
    assert.equal(differ.status, 400);
    assert.deepEqual(differ.body.details, []);
  });

  it('/openapi.json documents the header and the 409 on the chat routes', async () => {
    const doc = await (await fetch(`${stack.base}/openapi.json`)).json();
    for (const path of ['/chat', '/v1/chat', '/chat-stream', '/v1/chat:stream']) {
      const op = doc.paths[path].post;
      const header = op.parameters.find((p) => p.in === 'header' && p.name === 'Idempotency-Key');
      assert.ok(header, path);
      assert.equal(header.required, false);
      assert.equal(op.responses['409'].content['application/json'].schema.$ref,
        '#/components/schemas/Error');
    }
  });

  it('one tenant\'s key is not seen by another tenant', async () => {
    const model = 'ok@idem-tenants';
    const body = { message: 'same key, two tenants', session_id: 'idem-tenants', model };
    const a = await post('/v1/chat', body, 'key-shared', tenantA);
    assert.equal(a.status, 200);
    // Tenant B's request with the same key and another message is no reuse:
    // B's key is its own, so B's turn runs.
    const b = await post('/v1/chat', { ...body, message: 'something else' }, 'key-shared', tenantB);
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.match(b.body.response, /something else/);
    // And the same message under B's key is a new turn too, not A's answer.
    const b2 = await post('/v1/chat', body, 'key-shared-2', tenantB);
    assert.equal(b2.status, 200);
    assert.equal(b2.body.turn_count, 2);
    assert.equal(await attempts(model), 3);
    assert.equal(await turns('idem-tenants', tenantA), 1);
    assert.equal(await turns('idem-tenants', tenantB), 2);
    // A's repeat still gets A's answer.
    const again = await post('/v1/chat', body, 'key-shared', tenantA);
    assert.deepEqual(again.body, a.body);
    assert.equal(await attempts(model), 3);
  });
});
