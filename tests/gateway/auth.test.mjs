// API keys through chat-gateway, end to end with the real binaries.
//
// Strategy: the safe default is tested by starting chat-gateway on a
// non-loopback address it cannot bind (192.0.2.1, TEST-NET-1 of RFC 5737):
// it must decide before binding, so a refusal (exit 2), an unreachable
// backend (exit 1, "did not say") and a skipped check (exit 1 from the bind)
// are told apart by the exit code and the log, and no test ever opens a port
// off loopback. The key tests start chat-server with an admin key from the
// environment, create keys through POST /v1/admin/keys and use them through
// the gateway (one with a limit of 2 requests a minute, for the rate-limit
// headers and the 429). That the client
// cannot claim to be loopback with X-Forwarded-For is tested where it can
// be seen, in tests/gateway/transcode/metadata_test.cc and
// tests/gateway/app/gateway_test.cc (every client here is on loopback).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import {
  GATEWAY, SERVER, SOURCE_DIR, postJson, startProcess, startStack, waitForRoomInTheMinute,
} from './harness.mjs';

// Not on this host: binding it fails, after the start-up check.
const OFF_LOOPBACK = '192.0.2.1:0';
const ADMIN_KEY = 'admin-secret-7c1e9f-0a8b4d6e';

// Runs chat-gateway until it exits on its own; resolves to its code and log.
function runGatewayToExit(args, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const child = spawn(GATEWAY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => { log += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chat-gateway did not exit:\n${log}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, log });
    });
  });
}

// A loopback port nobody listens on (it was free a moment ago).
function deadPort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

describe('safe default on a non-loopback address', () => {
  it('refuses to start in front of a chat-server that serves callers without a key', async () => {
    // chat-server told to serve callers without a key from anywhere.
    const server = await startProcess(SERVER, [
      '--listen=127.0.0.1:0', '--provider=echo', '--store=memory', '--allow_anonymous',
    ]);
    try {
      const { code, log } = await runGatewayToExit([
        `--listen=${OFF_LOOPBACK}`, `--backend=${server.address}`, '--backend_wait=20s',
      ]);
      assert.equal(code, 2, log);
      assert.match(log, /create an API key on chat-server/);
      assert.match(log, /--allow_anonymous/);
      assert.doesNotMatch(log, /listening on/);
    } finally {
      await server.stop();
    }
  });

  it('starts in front of a chat-server that requires keys', async () => {
    const server = await startProcess(SERVER, [
      '--listen=127.0.0.1:0', '--provider=echo', '--store=memory',
    ]);
    try {
      const { code, log } = await runGatewayToExit([
        `--listen=${OFF_LOOPBACK}`, `--backend=${server.address}`, '--backend_wait=20s',
      ]);
      // The check passed; binding an address this host lacks then fails.
      assert.equal(code, 1, log);
      assert.doesNotMatch(log, /create an API key|did not say/);
    } finally {
      await server.stop();
    }
  });

  it('exits 1 when chat-server does not answer within --backend_wait', async () => {
    const { code, log } = await runGatewayToExit([
      `--listen=${OFF_LOOPBACK}`, `--backend=127.0.0.1:${await deadPort()}`,
      '--backend_wait=300ms',
    ]);
    assert.equal(code, 1, log);
    assert.match(log, /did not say whether it requires API keys within --backend_wait=300ms/);
  });

  it('stops at once on SIGTERM while it waits for chat-server', async () => {
    const child = spawn(GATEWAY, [
      `--listen=${OFF_LOOPBACK}`, `--backend=127.0.0.1:${await deadPort()}`, '--backend_wait=1h',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise((resolve) => {
      const onData = (d) => {
        log += d;
        if (log.includes('whether it requires API keys (waiting up to 1h)')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
    });
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    assert.match(log, /stopped before it started/);
  });

  it('skips the check with --allow_anonymous (CHAT_GATEWAY_ALLOW_ANONYMOUS)', async () => {
    const port = await deadPort();
    for (const [args, env] of [
      [['--allow_anonymous'], {}],
      [[], { CHAT_GATEWAY_ALLOW_ANONYMOUS: 'true' }],
    ]) {
      const child = spawn(GATEWAY, [
        `--listen=${OFF_LOOPBACK}`, `--backend=127.0.0.1:${port}`, '--backend_wait=20s', ...args,
      ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      let log = '';
      child.stderr.on('data', (d) => { log += d; });
      child.stdout.on('data', (d) => { log += d; });
      const code = await new Promise((resolve) => child.on('exit', resolve));
      // It went straight to binding, which fails on this host.
      assert.equal(code, 1, log);
      assert.match(log, /--allow_anonymous: not checking/);
      assert.doesNotMatch(log, /did not say/);
    }
  });

  it('rejects a bad --backend_wait naming the flag', async () => {
    const { code, log } = await runGatewayToExit(['--backend_wait=0s']);
    assert.equal(code, 2, log);
    assert.match(log, /--backend_wait must be between 1ms and 1h; got 0/);
  });
});

describe('API keys through the gateway', () => {
  let stack;
  let key;
  before(async () => {
    stack = await startStack({
      serverEnv: { CHAT_ADMIN_KEY: ADMIN_KEY },
      gatewayArgs: ['--access_log', `--web_root=${SOURCE_DIR}/clients`],
    });
  });
  after(async () => { await stack?.stop(); });

  it('creates a key with the admin key, and refuses without it', async () => {
    let res = await postJson(stack.base, '/v1/admin/keys', { tenant: 'acme', name: 'web' });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await res.json()).code, 16);
    res = await postJson(stack.base, '/v1/admin/keys', { tenant: 'acme', name: 'web' },
      { Authorization: 'Bearer not-the-admin-key' });
    assert.equal(res.status, 401);
    assert.doesNotMatch(await res.text(), /not-the-admin-key/);
    res = await postJson(stack.base, '/v1/admin/keys', { tenant: 'acme', name: 'web' },
      { Authorization: `Bearer ${ADMIN_KEY}` });
    assert.equal(res.status, 200, await res.clone().text());
    const created = await res.json();
    assert.match(created.key, /^chatd_/);
    assert.equal(created.api_key.tenant, 'acme');
    key = created.key;
    res = await fetch(`${stack.base}/v1/admin/keys`, { headers: { 'x-api-key': ADMIN_KEY } });
    assert.equal(res.status, 200);
    assert.doesNotMatch(await res.text(), new RegExp(key));
  });

  it('serves the key as Authorization: Bearer and as x-api-key', async () => {
    assert.ok(key, 'the key was created');
    for (const auth of [{ Authorization: `Bearer ${key}` }, { 'x-api-key': key }]) {
      let res = await postJson(stack.base, '/chat', { message: 'hello there', session_id: 's1' }, auth);
      assert.equal(res.status, 200, await res.clone().text());
      res = await postJson(stack.base, '/v1/chat', { message: 'again', session_id: 's1' }, auth);
      assert.equal(res.status, 200, await res.clone().text());
      res = await fetch(`${stack.base}/history/s1`, { headers: auth });
      assert.equal(res.status, 200);
      assert.ok((await res.json()).messages.length >= 2);
    }
  });

  it('answers 401 with WWW-Authenticate: Bearer for a missing or bad key', async () => {
    const bad = 'chatd_nosuchid_0123456789abcdef';
    for (const [path, method, headers] of [
      ['/chat', 'POST', {}],
      ['/chat', 'POST', { Authorization: `Bearer ${bad}` }],
      ['/v1/chat', 'POST', { 'x-api-key': bad }],
      ['/history/s1', 'GET', { Authorization: `Bearer ${bad}` }],
      ['/v1/chat:stream', 'POST', { Authorization: `Bearer ${bad}` }],
      ['/chat-stream', 'POST', {}],
    ]) {
      const res = await fetch(stack.base + path, {
        method,
        headers: { 'Content-Type': 'application/json', ...headers },
        body: method === 'POST' ? JSON.stringify({ message: 'hi', session_id: 's1' }) : undefined,
      });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer', `${method} ${path}`);
      const body = await res.text();
      assert.doesNotMatch(body, new RegExp(bad), `${method} ${path}`);
      assert.equal(JSON.parse(body).code, 16, `${method} ${path}`);
    }
  });

  it('keeps /, /openapi.json and /web/ open', async () => {
    for (const path of ['/', '/openapi.json', '/web/']) {
      const res = await fetch(stack.base + path);
      assert.equal(res.status, 200, path);
    }
  });

  it('passes the rate-limit headers on, and Retry-After on a 429', async () => {
    let res = await postJson(stack.base, '/v1/admin/keys',
      { tenant: 'acme', name: 'limited', limits: { requests_per_minute: 2 } },
      { Authorization: `Bearer ${ADMIN_KEY}` });
    assert.equal(res.status, 200, await res.clone().text());
    const limited = (await res.json()).key;
    const auth = { Authorization: `Bearer ${limited}` };
    await waitForRoomInTheMinute();
    res = await postJson(stack.base, '/chat', { message: 'one', session_id: 'rl' }, auth);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '1');
    assert.ok(res.headers.get('x-ratelimit-reset-requests'));
    // A stream carries them with its headers.
    res = await postJson(stack.base, '/v1/chat:stream', { message: 'two', session_id: 'rl' }, auth);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '0');
    await res.text();
    for (const path of ['/chat', '/v1/chat:stream']) {
      res = await postJson(stack.base, path, { message: 'three', session_id: 'rl' }, auth);
      assert.equal(res.status, 429, path);
      assert.match(res.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/, path);
      assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '0', path);
      assert.equal((await res.json()).code, 8, path);
    }
  });

  it('never logs a key', async () => {
    // Requests above carried the admin key, the API key and a bad key; the
    // access log names each request, never its credentials.
    const log = stack.gateway.log();
    assert.match(log, /request="POST \/chat"/);
    assert.ok(!log.includes(ADMIN_KEY), 'admin key in the gateway log');
    assert.ok(!key || !log.includes(key), 'API key in the gateway log');
    assert.ok(!log.includes('chatd_nosuchid'), 'bad key in the gateway log');
  });
});
