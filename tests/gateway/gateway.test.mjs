// The REST contract (docs: ../shared REST-CONTRACT.md, docs/API.md) against
// the real binaries: every template route with its exact field names and
// types, the /v1 twins, errors, headers, CORS, keep-alive and pipelining.
// Strategy: one chat-server + chat-gateway pair per describe block, on
// ports the OS picks; assertions on bodies and headers, never on timing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import {
  startStack, startGateway, startProcess, postJson, poll, SERVER, SOURCE_DIR,
} from './harness.mjs';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function keys(obj) {
  return Object.keys(obj).sort();
}

describe('template routes', () => {
  let stack;
  before(async () => { stack = await startStack(); });
  after(async () => { await stack?.stop(); });

  it('GET /stats with no sessions has avg 0, all numbers', async () => {
    const res = await fetch(stack.base + '/stats');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.total_sessions, 0);
    assert.equal(body.total_messages, 0);
    assert.equal(body.avg_messages_per_session, 0);
    for (const k of ['total_sessions', 'total_messages', 'avg_messages_per_session']) {
      assert.equal(typeof body[k], 'number', k);
    }
  });

  it('GET / is the health check, exactly', async () => {
    const res = await fetch(stack.base + '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    assert.equal(await res.text(), '{"status":"ok","service":"chat-api"}');
  });

  it("POST /chat answers the template's fields (its test file's case)", async () => {
    const res = await postJson(stack.base, '/chat', { message: 'Hello', session_id: 'test-1' });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.ok('response' in body);
    for (const k of ['response', 'session_id', 'timestamp', 'turn_count']) assert.ok(k in body, k);
    assert.equal(typeof body.response, 'string');
    assert.ok(body.response.length > 0);
    assert.equal(body.session_id, 'test-1');
    assert.match(body.timestamp, ISO);
    assert.equal(body.turn_count, 1);
  });

  it('GET /history lists the turn after a chat on test-2', async () => {
    const chat = await postJson(stack.base, '/chat', {
      message: 'Hi there', session_id: 'test-2', system_prompt: null,
    });
    assert.equal(chat.status, 200);
    const res = await fetch(stack.base + '/history/test-2');
    assert.equal(res.status, 200);
    const body = await res.json();
    for (const k of ['session_id', 'messages', 'turn_count']) assert.ok(k in body, k);
    assert.equal(body.session_id, 'test-2');
    assert.ok(body.messages.length >= 1);
    assert.deepEqual(body.messages.map((m) => m.role), ['user', 'assistant']);
    assert.equal(body.messages[0].content, 'Hi there');
    assert.equal(typeof body.messages[1].content, 'string');
    assert.equal(body.turn_count, 1);
  });

  it('GET /history of an unknown session is 404 with an error body', async () => {
    const res = await fetch(stack.base + '/history/nobody');
    assert.equal(res.status, 404);
    const body = await res.json();
    assert.deepEqual(keys(body), ['code', 'details', 'message']);
    assert.equal(body.code, 5);
    assert.deepEqual(body.details, []);
  });

  it('GET /sessions lists session_id, turns, created_at', async () => {
    const res = await fetch(stack.base + '/sessions');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.ok(Array.isArray(body.sessions));
    const s = body.sessions.find((x) => x.session_id === 'test-1');
    assert.ok(s);
    assert.equal(s.turns, 1);
    assert.match(s.created_at, ISO);
  });

  it('POST /reset keeps the session and reports previous_turns', async () => {
    await postJson(stack.base, '/chat', { message: 'one', session_id: 'r1' });
    await postJson(stack.base, '/chat', { message: 'two', session_id: 'r1' });
    let res = await fetch(stack.base + '/reset/r1', { method: 'POST' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'reset', session_id: 'r1', previous_turns: 2 });
    res = await fetch(stack.base + '/history/r1');
    assert.equal(res.status, 200);
    const h = await res.json();
    assert.deepEqual(h.messages, []);
    assert.equal(h.turn_count, 0);
    res = await fetch(stack.base + '/reset/ghost', { method: 'POST' });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, 'not_found');
    assert.equal(body.session_id, 'ghost');
  });

  it('DELETE /history clears, then answers not_found', async () => {
    await postJson(stack.base, '/chat', { message: 'x', session_id: 'd1' });
    let res = await fetch(stack.base + '/history/d1', { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'cleared', session_id: 'd1' });
    res = await fetch(stack.base + '/history/d1', { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'not_found', session_id: 'd1' });
    assert.equal((await fetch(stack.base + '/history/d1')).status, 404);
  });

  it('GET /stats counts as numbers after turns', async () => {
    const body = await (await fetch(stack.base + '/stats')).json();
    assert.ok(body.total_sessions >= 2);
    assert.equal(typeof body.total_sessions, 'number');
    assert.equal(typeof body.total_input_tokens, 'number');
    assert.equal(body.avg_messages_per_session, body.total_messages / body.total_sessions);
  });

  it("the README's curl commands work unchanged", async () => {
    const port = new URL(stack.base).port;
    const run = (args) => new Promise((resolve, reject) =>
      execFile('curl', args, (err, stdout) => (err ? reject(err) : resolve(stdout))));
    let out;
    try {
      out = await run(['-sS', '-X', 'POST', `http://localhost:${port}/chat`, '-H',
        'Content-Type: application/json', '-d',
        '{"message":"Hello! What can you do?", "session_id":"readme-1"}']);
    } catch (e) {
      if (e.code === 'ENOENT') return; // No curl here; fetch covers the route.
      throw e;
    }
    const chat = JSON.parse(out);
    assert.equal(chat.session_id, 'readme-1');
    assert.ok(chat.response.includes('Hello! What can you do?'));
    const history = JSON.parse(await run(['-sS', `http://localhost:${port}/history/readme-1`]));
    assert.equal(history.messages[0].content, 'Hello! What can you do?');
  });
});

describe('template routes beyond the basics', () => {
  let stack;
  before(async () => { stack = await startStack({ echoDelay: '0s' }); });
  after(async () => { await stack?.stop(); });

  it('GET /sessions lists every session, as the template did (not one page)', async () => {
    const N = 230;
    for (let i = 0; i < N; i += 23) {
      await Promise.all(Array.from({ length: 23 }, (_, j) =>
        postJson(stack.base, '/chat', { message: 'x', session_id: `many-${i + j}` })
          .then((r) => assert.equal(r.status, 200))));
    }
    const all = await (await fetch(stack.base + '/sessions')).json();
    assert.equal(all.sessions.length, N);
    assert.equal(new Set(all.sessions.map((x) => x.session_id)).size, N);
    // The versioned route pages, as the proto says.
    const page = await (await fetch(stack.base + '/v1/sessions')).json();
    assert.equal(page.sessions.length, 100);
    assert.ok(page.next_page_token.length > 0);
  });

  it('a path variable wins over a query parameter of the same field', async () => {
    await postJson(stack.base, '/chat', { message: 'mine', session_id: 'path-owner' });
    await postJson(stack.base, '/chat', { message: 'theirs', session_id: 'path-victim' });
    const res = await fetch(stack.base + '/history/path-owner?session_id=path-victim');
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.session_id, 'path-owner');
    assert.equal(body.messages[0].content, 'mine');
    const del = await (await fetch(stack.base + '/history/path-nobody?session_id=path-victim',
      { method: 'DELETE' })).json();
    assert.deepEqual(del, { status: 'not_found', session_id: 'path-nobody' });
    assert.equal((await fetch(stack.base + '/history/path-victim')).status, 200);
  });

  it('invalid UTF-8 in a path or query value is 400, not a server error', async () => {
    for (const path of ['/history/%ff%fe', '/v1/sessions?page_token=%ff']) {
      const res = await fetch(stack.base + path);
      assert.equal(res.status, 400, path);
      const body = await res.json();
      assert.equal(body.code, 3);
      assert.match(body.message, /UTF-8/);
    }
    const reset = await fetch(stack.base + '/reset/%c3%28', { method: 'POST' });
    assert.equal(reset.status, 400);
  });
});

describe('versioned routes', () => {
  let stack;
  before(async () => { stack = await startStack(); });
  after(async () => { await stack?.stop(); });

  it('serve the same RPCs under /v1', async () => {
    assert.deepEqual(await (await fetch(stack.base + '/v1/status')).json(),
      { status: 'ok', service: 'chat-api' });
    // lowerCamelCase input is accepted; unknown fields are ignored.
    let res = await postJson(stack.base, '/v1/chat', { message: 'a', sessionId: 'v1', extra: [1] });
    assert.equal(res.status, 200);
    const chat = await res.json();
    assert.equal(chat.session_id, 'v1');
    assert.equal(typeof chat.usage.input_tokens, 'number');
    await postJson(stack.base, '/v1/chat', { message: 'b', session_id: 'v2' });
    res = await fetch(stack.base + '/v1/sessions/v1/history');
    assert.equal((await res.json()).messages.length, 2);
    res = await fetch(stack.base + '/v1/sessions?page_size=1');
    const page = await res.json();
    assert.equal(page.sessions.length, 1);
    assert.ok(page.next_page_token);
    res = await fetch(stack.base + '/v1/sessions?page_size=1&page_token=' +
      encodeURIComponent(page.next_page_token));
    const page2 = await res.json();
    assert.equal(page2.sessions.length, 1);
    assert.notEqual(page2.sessions[0].session_id, page.sessions[0].session_id);
    res = await fetch(stack.base + '/v1/sessions/v1:reset', { method: 'POST' });
    assert.equal((await res.json()).previous_turns, 1);
    res = await fetch(stack.base + '/v1/sessions/v2', { method: 'DELETE' });
    assert.equal((await res.json()).status, 'cleared');
    const stats = await (await fetch(stack.base + '/v1/stats')).json();
    assert.equal(stats.total_sessions, 1);
  });
});

describe('errors', () => {
  let stack;
  before(async () => {
    stack = await startStack({ echoDelay: '50ms', gatewayArgs: ['--max_body_bytes=2048'] });
  });
  after(async () => { await stack?.stop(); });

  async function expectError(res, status, code, pattern) {
    assert.equal(res.status, status);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const body = await res.json();
    assert.equal(body.code, code);
    assert.deepEqual(body.details, []);
    if (pattern) assert.match(body.message, pattern);
    return body;
  }

  it('malformed JSON is 400 saying where', async () => {
    await expectError(await postJson(stack.base, '/chat', '{"message": "hi",'), 400, 3,
      /malformed JSON body.*line 1, column/);
    await expectError(await postJson(stack.base, '/chat', '[1]'), 400, 3, /object/);
    await expectError(await postJson(stack.base, '/chat', '{"max_tokens":"lots"}'), 400, 3,
      /max_tokens/);
  });

  it('missing required fields are 400 naming the field', async () => {
    await expectError(await postJson(stack.base, '/chat', { session_id: 's' }), 400, 3, /message/);
    await expectError(await postJson(stack.base, '/chat', { message: 'm' }), 400, 3, /session_id/);
  });

  it('unknown route is 404', async () => {
    await expectError(await fetch(stack.base + '/nope'), 404, 5, /no route/);
  });

  it('wrong method is 405 with Allow', async () => {
    const res = await fetch(stack.base + '/chat');
    assert.equal(res.headers.get('allow'), 'POST, OPTIONS');
    await expectError(res, 405, 12);
    const put = await fetch(stack.base + '/history/x', { method: 'PUT' });
    assert.equal(put.headers.get('allow'), 'GET, DELETE, OPTIONS');
    await expectError(put, 405, 12);
  });

  it('a body over --max_body_bytes is 413', async () => {
    const res = await postJson(stack.base, '/chat', { message: 'x'.repeat(5000), session_id: 'big' });
    await expectError(res, 413, 8, /limit/);
  });

  it('a bad query value is 400 naming the field', async () => {
    await expectError(await fetch(stack.base + '/v1/sessions?page_size=ten'), 400, 3, /page_size/);
  });

  it('Grpc-Timeout bounds the call: 504 when it passes', async () => {
    const res = await postJson(stack.base, '/chat',
      { message: 'a b c d e f g h i j k l m n o p', session_id: 'slow' },
      { 'Grpc-Timeout': '100m' });
    await expectError(res, 504, 4);
    await expectError(await postJson(stack.base, '/chat', { message: 'a', session_id: 's' },
      { 'Grpc-Timeout': 'soon' }), 400, 3, /Grpc-Timeout/);
  });

  it('--request_timeout is the deadline of calls without Grpc-Timeout', async () => {
    const strict = await startGateway([`--backend=${stack.server.address}`, '--request_timeout=100ms']);
    try {
      const res = await postJson(`http://127.0.0.1:${strict.port}`, '/chat',
        { message: 'a b c d e f g h i j k l m n o p', session_id: 'strict' });
      await expectError(res, 504, 4);
    } finally {
      await strict.stop();
    }
  });

  it('a call waits for an unreachable backend until its deadline, then 504', async () => {
    const lone = await startGateway(['--backend=127.0.0.1:1', '--request_timeout=1s']);
    try {
      const ready = await fetch(`http://127.0.0.1:${lone.port}/readyz`);
      assert.equal(ready.status, 503);
      await ready.text();
      const res = await fetch(`http://127.0.0.1:${lone.port}/stats`);
      await expectError(res, 504, 4);
    } finally {
      await lone.stop();
    }
  });
});

describe('headers, CORS and connections', () => {
  let stack;
  before(async () => {
    stack = await startStack({
      gatewayArgs: ['--cors_origins=http://app.example, http://other.example', '--read_timeout=1s'],
    });
  });
  after(async () => { await stack?.stop(); });

  it('returns the client x-request-id, or makes one', async () => {
    let res = await fetch(stack.base + '/', { headers: { 'x-request-id': 'req-42' } });
    assert.equal(res.headers.get('x-request-id'), 'req-42');
    res = await fetch(stack.base + '/');
    assert.match(res.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
  });

  it('forwards Authorization and Grpc-Metadata-* without breaking the call', async () => {
    let res = await postJson(stack.base, '/chat', { message: 'm', session_id: 'h1' }, {
      'Grpc-Metadata-Tenant-Hint': 'x',
    });
    assert.equal(res.status, 200);
    // chat-server sees the key and refuses it: no key of that name exists.
    res = await postJson(stack.base, '/chat', { message: 'm', session_id: 'h1' }, {
      Authorization: 'Bearer k-123',
    });
    assert.equal(res.status, 401);
  });

  it('answers a CORS preflight for an allowed origin', async () => {
    const res = await fetch(stack.base + '/chat', {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://app.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type, authorization',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://app.example');
    assert.match(res.headers.get('access-control-allow-methods'), /POST/);
    assert.equal(res.headers.get('access-control-allow-headers'), 'content-type, authorization');
    assert.equal(res.headers.get('allow'), 'POST, OPTIONS');
  });

  it('marks answers for allowed origins only, exposing x-request-id and the rate-limit headers', async () => {
    let res = await fetch(stack.base + '/', { headers: { Origin: 'http://other.example' } });
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://other.example');
    assert.equal(res.headers.get('access-control-expose-headers'),
      'x-request-id, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, '
      + 'x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, '
      + 'x-ratelimit-reset-tokens, retry-after');
    res = await fetch(stack.base + '/', { headers: { Origin: 'http://evil.example' } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    res = await fetch(stack.base + '/nope', { method: 'OPTIONS' });
    assert.equal(res.status, 404);
  });

  function rawExchange(port, payload, until) {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
        if (until(data)) { socket.destroy(); resolve(data); }
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
      socket.write(payload);
    });
  }

  it('answers pipelined requests in order on one connection', async () => {
    const port = new URL(stack.base).port;
    const req = (path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const data = await rawExchange(port,
      req('/') + req('/nope') + req('/stats'),
      (d) => (d.match(/HTTP\/1\.1 /g) || []).length === 3 && d.endsWith('}'));
    const statuses = [...data.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '404', '200']);
    assert.ok(data.indexOf('chat-api') < data.indexOf('no route'));
  });

  it('survives clients that vanish mid-request', async () => {
    const port = new URL(stack.base).port;
    const body = JSON.stringify({ message: 'vanish', session_id: 'vanish' });
    const request = `POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`;
    await Promise.all(Array.from({ length: 200 }, (_, i) => new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(request);
        // Leave at different moments: before, during and after the answer.
        setTimeout(() => { socket.destroy(); resolve(); }, i % 7);
      });
      socket.on('error', () => resolve());
    })));
    const res = await fetch(stack.base + '/');
    assert.equal(res.status, 200);
  });

  it('answers HEAD like GET, without a body, and keeps the connection usable', async () => {
    const port = new URL(stack.base).port;
    const data = await rawExchange(port,
      'HEAD /stats HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n',
      (d) => d.endsWith('"service":"chat-api"}'));
    const [head, rest] = data.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200 OK/);
    assert.match(head, /Content-Length: \d+/);
    assert.match(rest, /^HTTP\/1\.1 200 OK/);
  });

  it('closes a connection whose request body never completes (read timeout)', async () => {
    const port = new URL(stack.base).port;
    // --read_timeout=1s bounds the body once the head is in: the gateway
    // closes the socket (tcp_stream's timeout closes it before any answer
    // could be written). A head that never completes is answered 408
    // (transport.test.mjs).
    const data = await rawExchange(port,
      'POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"mess', () => false);
    assert.equal(data, '');
  });

  it('answers Expect: 100-continue', async () => {
    const port = new URL(stack.base).port;
    const body = JSON.stringify({ message: 'c', session_id: 'cont' });
    const data = await new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let got = '';
      socket.on('data', (d) => {
        got += d.toString();
        if (got === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write(body);
        if (got.includes('"turn_count"')) { socket.destroy(); resolve(got); }
      });
      socket.on('error', reject);
      socket.write(`POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Expect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
    });
    assert.match(data, /HTTP\/1\.1 200 OK/);
  });
});

describe('web page', () => {
  let stack;
  before(async () => {
    stack = await startStack({ gatewayArgs: [`--web_root=${SOURCE_DIR}/clients`] });
  });
  after(async () => { await stack?.stop(); });

  it('serves the chat page and the JS client', async () => {
    let res = await fetch(stack.base + '/web/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(await res.text(), /chat-client\.js/);
    res = await fetch(stack.base + '/js/chat-client.js');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/javascript/);
    assert.match(await res.text(), /export class ChatClient/);
  });
});

describe('several backends', () => {
  const servers = [];
  let gateway;
  const singles = [];
  before(async () => {
    for (let i = 0; i < 2; i++) {
      servers.push(await startProcess(SERVER, ['--listen=127.0.0.1:0', '--provider=echo',
        '--store=memory', '--echo_delay=1ms', '--shutdown_grace=1s']));
    }
    gateway = await startGateway([`--backend=${servers.map((s) => s.address).join(',')}`]);
    for (const s of servers) singles.push(await startGateway([`--backend=${s.address}`]));
  });
  after(async () => {
    for (const p of [gateway, ...singles, ...servers]) await p?.stop();
  });

  it('spreads calls round-robin and skips a replica that stopped', async () => {
    const base = `http://127.0.0.1:${gateway.port}`;
    // Each replica has its own memory store, so its session count says how
    // many calls it served. The gateway is ready once one replica is; the
    // other joins the rotation when its connection is up, so the calls go
    // on until both have served some (or the bound runs out).
    const sessionsOn = async (g) =>
      (await (await fetch(`http://127.0.0.1:${g.port}/stats`)).json()).total_sessions;
    let sent = 0;
    let counts = [];
    await poll(async () => {
      for (let i = 0; i < 8; i++) {
        const res = await postJson(base, '/chat', { message: 'm', session_id: `rr-${sent++}` });
        assert.equal(res.status, 200);
      }
      counts = [await sessionsOn(singles[0]), await sessionsOn(singles[1])];
      return counts[0] > 0 && counts[1] > 0;
    });
    assert.equal(counts[0] + counts[1], sent);
    assert.ok(counts[0] > 0 && counts[1] > 0, `unbalanced after ${sent} calls: ${counts}`);

    await servers[0].stop();
    for (let i = 0; i < 6; i++) {
      const res = await postJson(base, '/chat', { message: 'm', session_id: `after-${i}` });
      assert.equal(res.status, 200, await res.text());
    }
  });
});
