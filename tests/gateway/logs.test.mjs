// Structured logs and tracing through the real binaries: chat-gateway ->
// chat-server -> the fake upstream (Anthropic's wire format), both binaries
// logging JSON. A request's W3C traceparent (or a fresh one when it has
// none or an invalid one) must reach the upstream as a header and appear in
// both binaries' lines about the call; message content stays out of the logs
// unless chat-server runs with --log_content.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startProcess, startStack, postJson, SOURCE_DIR, poll } from './harness.mjs';

const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

// The JSON lines of a process's log; any other line fails the test (JSON
// mode must not leak a text line).
function jsonLines(log) {
  return log.split('\n').filter((l) => l.trim() !== '').map((l) => {
    try {
      return JSON.parse(l);
    } catch (e) {
      throw new Error(`not a JSON log line: ${l}`);
    }
  });
}

// Waits until `find` returns something for the process's lines: the
// per-call line is written as the call ends, which may be just after the
// client saw its answer.
async function lineOf(proc, find) {
  const found = await poll(() => jsonLines(proc.log()).find(find));
  if (!found) throw new Error(`no such log line in:\n${proc.log()}`);
  return found;
}

async function upstreamStats(base, key) {
  const res = await fetch(`${base}/_stats?key=${encodeURIComponent(key)}`);
  return res.json();
}

function stackWith(serverArgs) {
  return async () => {
    const upstream = await startProcess(process.execPath,
      [join(SOURCE_DIR, 'tests/fake_upstream/server.mjs')]);
    const upstreamBase = `http://127.0.0.1:${upstream.port}`;
    const stack = await startStack({
      provider: 'anthropic',
      gatewayArgs: ['--log_format=json', '--access_log'],
      serverArgs: ['--log_format=json', '--provider_retries=0', ...serverArgs],
      serverEnv: { ANTHROPIC_API_KEY: 'sk-ant-test-secret', ANTHROPIC_BASE_URL: upstreamBase },
    });
    return { upstream, upstreamBase, stack };
  };
}

describe('logs and traces (JSON)', () => {
  let env;
  before(async () => { env = await stackWith([])(); });
  after(async () => {
    await env?.stack?.stop();
    await env?.upstream?.stop();
  });

  it('carries a given traceparent to chat-server, the upstream and both logs', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const model = 'ok@trace-given';
    const res = await postJson(env.stack.base, '/chat',
      { message: 'secret words here', session_id: 'trace-given', model },
      { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'rid-given' });
    assert.equal(res.status, 200);
    await res.json();
    // The gateway answers with its own span in the same trace.
    const returned = TRACEPARENT_RE.exec(res.headers.get('traceparent'));
    assert.ok(returned);
    assert.equal(returned[1], traceId);
    assert.notEqual(returned[2], '00f067aa0ba902b7');

    const stats = await upstreamStats(env.upstreamBase, model);
    const sent = TRACEPARENT_RE.exec(stats.last_traceparent ?? '');
    assert.ok(sent, `upstream saw traceparent ${stats.last_traceparent}`);
    assert.equal(sent[1], traceId);

    const access = await lineOf(env.stack.gateway,
      (l) => l.msg === 'access' && l.request_id === 'rid-given');
    assert.equal(access.trace_id, traceId);
    assert.equal(access.status, 200);
    assert.equal(access.level, 'info');
    assert.equal(typeof access.latency_ms, 'number');
    assert.match(access.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const turn = await lineOf(env.stack.server,
      (l) => l.msg === 'turn' && l.request_id === 'rid-given');
    assert.equal(turn.trace_id, traceId);
    assert.equal(turn.rpc, 'Chat');
    assert.equal(turn.status, 'OK');
    assert.equal(turn.tenant, 'default');
    assert.equal(turn.session, 'trace-given');
    assert.equal(turn.model, model);
    assert.equal(turn.provider, 'anthropic');
    assert.equal(turn.provider_request_id, 'req_fake_ok');
    assert.equal(turn.retries, 0);
    assert.ok(turn.input_tokens > 0 && turn.output_tokens > 0);
    assert.equal(typeof turn.ttft_ms, 'number');
    // The server's span is the upstream's parent.
    assert.equal(turn.span_id, sent[2]);

    // Content and secrets stay out of both logs.
    for (const proc of [env.stack.gateway, env.stack.server]) {
      assert.doesNotMatch(proc.log(), /secret words here/);
      assert.doesNotMatch(proc.log(), /sk-ant-test-secret/);
    }
  });

  for (const [name, header] of [['absent', undefined], ['invalid', '00-00000000000000000000000000000000-00f067aa0ba902b7-01']]) {
    it(`creates a fresh trace when the traceparent is ${name}`, async () => {
      const model = `ok@trace-${name}`;
      const rid = `rid-${name}`;
      const headers = { 'x-request-id': rid };
      if (header) headers.traceparent = header;
      const res = await postJson(env.stack.base, '/v1/chat:stream',
        { message: 'hi', session_id: `trace-${name}`, model }, headers);
      assert.equal(res.status, 200);
      await res.text();
      const returned = TRACEPARENT_RE.exec(res.headers.get('traceparent'));
      assert.ok(returned);
      const traceId = returned[1];
      assert.notEqual(traceId, '0'.repeat(32));

      const stats = await upstreamStats(env.upstreamBase, model);
      assert.equal(TRACEPARENT_RE.exec(stats.last_traceparent ?? '')?.[1], traceId);
      const access = await lineOf(env.stack.gateway,
        (l) => l.msg === 'access' && l.request_id === rid);
      assert.equal(access.trace_id, traceId);
      const turn = await lineOf(env.stack.server,
        (l) => l.msg === 'turn' && l.request_id === rid);
      assert.equal(turn.trace_id, traceId);
      assert.equal(turn.rpc, 'ChatStream');
    });
  }

  it('logs other RPCs with their trace too', async () => {
    const traceId = 'a'.repeat(32);
    const res = await fetch(`${env.stack.base}/stats`, {
      headers: { traceparent: `00-${traceId}-${'b'.repeat(16)}-00`, 'x-request-id': 'rid-stats' },
    });
    assert.equal(res.status, 200);
    const call = await lineOf(env.stack.server,
      (l) => l.msg === 'call' && l.request_id === 'rid-stats');
    assert.equal(call.trace_id, traceId);
    assert.equal(call.rpc, 'GetStats');
  });
});

describe('logs with --log_content', () => {
  let env;
  before(async () => { env = await stackWith(['--log_content'])(); });
  after(async () => {
    await env?.stack?.stop();
    await env?.upstream?.stop();
  });

  it('puts the message and the reply in the turn line', async () => {
    const res = await postJson(env.stack.base, '/chat',
      { message: 'visible "quoted" words', session_id: 'content', model: 'ok@content' },
      { 'x-request-id': 'rid-content' });
    assert.equal(res.status, 200);
    const turn = await lineOf(env.stack.server,
      (l) => l.msg === 'turn' && l.request_id === 'rid-content');
    assert.equal(turn.message, 'visible "quoted" words');
    assert.match(turn.response, /visible "quoted" words/);
    assert.doesNotMatch(env.stack.server.log(), /sk-ant-test-secret/);
  });
});
