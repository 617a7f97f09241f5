// A fake LLM upstream for tests: a real HTTP/1.1 server on loopback that
// speaks Anthropic's Messages API (POST /v1/messages) and OpenAI's Chat
// Completions (POST <any prefix>/chat/completions) streaming formats exactly.
//
// The request's `model` picks the behaviour: "<behaviour>[:<arg>...][@<tag>]"
// (the whole model string is the key its statistics are kept under):
//   ok               a streamed reply, one SSE event per write
//   split            the same bytes, written in 1-5 byte pieces
//   ping             ping events (Anthropic) / ": ping" comments (OpenAI)
//                    between all the others
//   slow:MS          MS milliseconds between events
//   hold             the first delta, then nothing until POST /_release
//   status:CODE[:RA] fail with HTTP CODE and the provider's error body
//                    (RA: a retry-after header, in seconds)
//   flaky:CODE:N     fail the first N attempts with CODE, then answer ok
//   midstream        two deltas, then an error event inside the 200 stream
//   errorfirst       an error event before any delta
//   truncated        two deltas, then the end of the body without the final
//                    event
//   stall            headers and the first event, then silence
//   linger           the whole reply, then the body stays open
//   noheaders        never answer
//   vllm             (OpenAI) choices null or missing, ": comments"
// The reply is "Echo of N messages: <last user message>", word by word, so
// tests can see how much history was sent.
// A request with "stream": false gets the reply as one JSON document in the
// API's non-streaming format: slow first waits MS per word and MS more, hold
// until released, midstream and errorfirst fail with 529 (Anthropic) or 503,
// truncated ends the connection halfway through the body, stall never
// answers.
//
// With --tls it serves HTTPS and offers HTTP/2 (tls/cert.pem, for
// 127.0.0.1); /_stats then reports each model's "http_version". With
// --tls-http1 it serves HTTPS with HTTP/1.1 only. --max-streams=N has an
// HTTP/2 server allow N concurrent streams per connection (default: no
// limit).
// Control: GET /_server -> connections opened, peak open, requests, peak
// concurrent streams; GET /_stats?key=MODEL -> {"attempts", "closed_early",
// "completed", "last_request", "last_traceparent", "saw_credentials"}; POST /_release?key=MODEL
// ends held streams. Prints "fake-upstream listening on 127.0.0.1:PORT".

import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';

const stats = new Map();
// Connection reuse, for benchmarks: connections opened vs requests served.
const server_stats = {connections_opened: 0, open_connections: 0, peak_open_connections: 0,
                      requests: 0, peak_streams: 0, streams: 0, http2_sessions: 0};
const held = new Map();  // key -> [release functions]

function statsFor(key) {
  if (!stats.has(key)) {
    stats.set(key, {attempts: 0, closed_early: 0, completed: 0, last_request: null,
                    saw_credentials: false});
  }
  return stats.get(key);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function parseModel(model) {
  const [spec] = String(model ?? 'ok').split('@');
  const [behaviour, ...args] = spec.split(':');
  return {behaviour, args};
}

function replyWords(messages) {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  const text = `Echo of ${messages.length} messages: ${last ? last.content : ''}`;
  return text.match(/\S+\s*/g) ?? [text];
}

// Anthropic's documented status codes and error types.
const anthropicErrorTypes = {
  400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error',
  404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error',
  500: 'api_error', 529: 'overloaded_error',
};

function sendError(res, api, code, retryAfter) {
  const headers = {'content-type': 'application/json'};
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  let body;
  if (api === 'anthropic') {
    headers['request-id'] = `req_fake_${Date.now()}`;
    const type = anthropicErrorTypes[code] ?? 'api_error';
    body = {type: 'error', error: {type, message: `fake ${type}`}};
  } else {
    headers['x-request-id'] = `req_fake_${Date.now()}`;
    const type = code === 401 ? 'invalid_request_error'
               : code === 429 ? 'requests' : code >= 500 ? 'server_error'
               : 'invalid_request_error';
    const errorCode = code === 401 ? 'invalid_api_key'
                    : code === 429 ? 'rate_limit_exceeded' : null;
    body = {error: {message: code === 401 ? 'Incorrect API key provided: sk-***' : `fake error ${code}`,
                    type, param: null, code: errorCode}};
  }
  res.writeHead(code, headers);
  res.end(JSON.stringify(body));
}

// Resolves at POST /_release?key=MODEL or when the client goes.
function heldUntilReleased(model, res) {
  return new Promise((resolve) => {
    if (!held.has(model)) held.set(model, []);
    held.get(model).push(resolve);
    res.on('close', resolve);
  });
}

// One whole (non-streamed) reply, as the API's JSON document.
function wholeReply(api, model, words, inputTokens) {
  const text = words.join('');
  if (api === 'anthropic') {
    return {id: 'msg_fake', type: 'message', role: 'assistant', model,
            content: [{type: 'text', text}], stop_reason: 'end_turn', stop_sequence: null,
            usage: {input_tokens: inputTokens, output_tokens: words.length}};
  }
  return {id: 'chatcmpl-fake', object: 'chat.completion', created: 1700000000, model,
          system_fingerprint: null,
          choices: [{index: 0, message: {role: 'assistant', content: text}, logprobs: null,
                     finish_reason: 'stop'}],
          usage: {prompt_tokens: inputTokens, completion_tokens: words.length,
                  total_tokens: inputTokens + words.length}};
}

// Answers a "stream": false request with the whole reply at once.
async function serveWhole(api, res, model, words, inputTokens, behaviour, args, s) {
  let closed = false;
  res.on('close', () => { closed = true; });
  if (behaviour === 'stall') return;
  if (behaviour === 'midstream' || behaviour === 'errorfirst') {
    return sendError(res, api, api === 'anthropic' ? 529 : 503);
  }
  if (behaviour === 'slow') await sleep(Number(args[0] ?? 100) * (words.length + 1));
  if (behaviour === 'hold') await heldUntilReleased(model, res);
  if (closed) return;
  const body = JSON.stringify(wholeReply(api, model, words, inputTokens));
  const headers = {'content-type': 'application/json',
                   'content-length': String(Buffer.byteLength(body))};
  headers[api === 'anthropic' ? 'request-id' : 'x-request-id'] = 'req_fake_ok';
  res.writeHead(200, headers);
  if (behaviour === 'truncated') {
    // Closed once the half is sent: destroy() at once would drop the
    // headers and the half still buffered, and the client would see nothing.
    res.write(body.slice(0, body.length >> 1), () => res.destroy());
    return;
  }
  res.end(body);
  s.completed += 1;
}

// The events of one streamed reply, as SSE text blocks.
function anthropicEvents(model, words, inputTokens, behaviour) {
  const ev = (name, data) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const events = [ev('message_start', {type: 'message_start', message: {
    id: 'msg_fake', type: 'message', role: 'assistant', content: [], model,
    stop_reason: null, stop_sequence: null,
    usage: {input_tokens: inputTokens, output_tokens: 1}}})];
  events.push(ev('content_block_start',
                 {type: 'content_block_start', index: 0, content_block: {type: 'text', text: ''}}));
  const deltas = words.map((w) => ev('content_block_delta',
      {type: 'content_block_delta', index: 0, delta: {type: 'text_delta', text: w}}));
  const error = ev('error', {type: 'error', error: {type: 'overloaded_error', message: 'Overloaded'}});
  if (behaviour === 'errorfirst') return [...events, error];
  if (behaviour === 'midstream') return [...events, ...deltas.slice(0, 2), error];
  if (behaviour === 'truncated') return [...events, ...deltas.slice(0, 2)];
  events.push(...deltas);
  events.push(ev('content_block_stop', {type: 'content_block_stop', index: 0}));
  events.push(ev('message_delta', {type: 'message_delta',
      delta: {stop_reason: 'end_turn', stop_sequence: null}, usage: {output_tokens: words.length}}));
  events.push(ev('message_stop', {type: 'message_stop'}));
  return events;
}

function openaiEvents(model, words, inputTokens, behaviour) {
  const chunk = (choices, usage = null) => `data: ${JSON.stringify({
    id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1700000000, model,
    system_fingerprint: null, choices, usage})}\n\n`;
  const events = [chunk([{index: 0, delta: {role: 'assistant', content: ''}, logprobs: null,
                          finish_reason: null}])];
  const deltas = words.map((w) => chunk([{index: 0, delta: {content: w}, logprobs: null,
                                          finish_reason: null}]));
  const error = `data: ${JSON.stringify({error: {message: 'upstream overloaded',
                                                 type: 'server_error', code: 503}})}\n\n`;
  if (behaviour === 'errorfirst') return [...events, error];
  if (behaviour === 'midstream') return [...events, ...deltas.slice(0, 2), error];
  if (behaviour === 'truncated') return [...events, ...deltas.slice(0, 2)];
  if (behaviour === 'vllm') {
    return [': OPENROUTER PROCESSING\n\n',
            `data: ${JSON.stringify({id: 'x', model, choices: null})}\n\n`,
            ...deltas.map((d, i) => i % 2 ? d : `: keep-alive\n\n${d}`),
            `data: ${JSON.stringify({id: 'x', model})}\n\n`,
            chunk([{index: 0, delta: {}, finish_reason: 'stop'}]),
            chunk([], {prompt_tokens: inputTokens, completion_tokens: words.length,
                       total_tokens: inputTokens + words.length}),
            'data: [DONE]\n\n'];
  }
  events.push(...deltas);
  events.push(chunk([{index: 0, delta: {}, logprobs: null, finish_reason: 'stop'}]));
  events.push(chunk([], {prompt_tokens: inputTokens, completion_tokens: words.length,
                         total_tokens: inputTokens + words.length}));
  events.push('data: [DONE]\n\n');
  return events;
}

async function serveCompletion(api, req, res, body) {
  server_stats.requests += 1;
  server_stats.streams += 1;
  server_stats.peak_streams = Math.max(server_stats.peak_streams, server_stats.streams);
  res.on('close', () => { server_stats.streams -= 1; });
  const model = String(body.model ?? 'ok');
  const s = statsFor(model);
  s.attempts += 1;
  s.last_request = body;
  s.last_traceparent = req.headers.traceparent ?? null;
  s.http_version = req.httpVersion;
  let closed = false;
  let ended = false;
  res.on('finish', () => { ended = true; });
  res.on('close', () => {
    if (!ended) {
      closed = true;
      s.closed_early += 1;
    }
  });
  if (api === 'anthropic') {
    s.saw_credentials = Boolean(req.headers['x-api-key']) &&
                        req.headers['anthropic-version'] === '2023-06-01';
    if (!s.saw_credentials) return sendError(res, api, 401);
  } else {
    s.saw_credentials = /^Bearer \S+/.test(req.headers.authorization ?? '');
  }
  const {behaviour, args} = parseModel(model);
  if (behaviour === 'status') {
    return sendError(res, api, Number(args[0]), args[1]);
  }
  if (behaviour === 'flaky' && s.attempts <= Number(args[1])) {
    return sendError(res, api, Number(args[0]), Number(args[0]) === 429 ? 0 : undefined);
  }
  if (behaviour === 'noheaders') return;  // Until the client gives up.

  const messages = body.messages ?? [];
  const words = replyWords(api === 'openai' ? messages.filter((m) => m.role !== 'system')
                                            : messages);
  const inputTokens = Math.ceil(JSON.stringify(messages).length / 4);
  if (body.stream === false) {
    return serveWhole(api, res, model, words, inputTokens, behaviour, args, s);
  }
  const events = (api === 'anthropic' ? anthropicEvents : openaiEvents)(
      model, words, inputTokens, behaviour);
  const headers = {'content-type': 'text/event-stream; charset=utf-8',
                   'cache-control': 'no-cache'};
  headers[api === 'anthropic' ? 'request-id' : 'x-request-id'] = 'req_fake_ok';
  res.writeHead(200, headers);
  if (typeof res.flushHeaders === 'function') res.flushHeaders();

  const delayMs = behaviour === 'slow' ? Number(args[0] ?? 100) : 0;
  for (let i = 0; i < events.length && !closed; ++i) {
    let text = events[i];
    if (behaviour === 'ping' && i > 0) {
      text = (api === 'anthropic' ? 'event: ping\ndata: {"type": "ping"}\n\n' : ': ping\n\n') + text;
    }
    if (behaviour === 'split') {
      while (text.length > 0 && !closed) {
        const n = 1 + Math.floor(Math.random() * 5);
        res.write(text.slice(0, n));
        text = text.slice(n);
        await sleep(1);
      }
    } else {
      res.write(text);
    }
    if (behaviour === 'stall' && i === 0) return;  // Silence, connection open.
    if (behaviour === 'hold' && i === 2) {
      // The first delta is out; wait for the test's release or the client.
      await heldUntilReleased(model, res);
    }
    if (delayMs > 0) await sleep(delayMs);
  }
  if (behaviour === 'linger' && !closed) {
    // Every event sent, but the body never ends: the client must answer
    // from the final event, not from the end of the body.
    s.completed += 1;
    return;
  }
  if (!closed) {
    res.end();
    s.completed += 1;
  }
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/_stats') {
    const key = url.searchParams.get('key');
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify(stats.get(key) ?? statsFor(key)));
    return;
  }
  if (req.method === 'GET' && url.pathname === '/_server') {
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify(server_stats));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/_release') {
    const key = url.searchParams.get('key');
    for (const release of held.get(key) ?? []) release();
    held.delete(key);
    res.writeHead(200, {'content-type': 'application/json'});
    res.end('{}');
    return;
  }
  const raw = await readBody(req);
  let api = null;
  if (req.method === 'POST' && url.pathname === '/v1/messages') api = 'anthropic';
  if (req.method === 'POST' && url.pathname.endsWith('/chat/completions')) api = 'openai';
  if (api === null) {
    res.writeHead(404, {'content-type': 'application/json'});
    res.end(JSON.stringify({error: {type: 'not_found_error', message: `no route ${url.pathname}`}}));
    return;
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return sendError(res, api, 400);
  }
  if (typeof body.stream !== 'boolean') return sendError(res, api, 400);
  await serveCompletion(api, req, res, body);
}

// --tls: HTTPS with HTTP/2 offered by ALPN (HTTP/1.1 still accepted), with
// the test certificate in tls/ (issued for 127.0.0.1, valid 2000-2099).
// --tls-http1: HTTPS that speaks HTTP/1.1 only (no ALPN h2).
const tlsHttp1 = process.argv.includes('--tls-http1');
const tls = tlsHttp1 || process.argv.includes('--tls');
const maxStreamsArg = process.argv.find((a) => a.startsWith('--max-streams='));
const here = new URL('.', import.meta.url);
const credentials = tls ? {key: fs.readFileSync(new URL('tls/key.pem', here)),
                           cert: fs.readFileSync(new URL('tls/cert.pem', here))}
                        : {};
const server = tlsHttp1
    ? https.createServer(credentials, handle)
    : tls
    ? http2.createSecureServer(
          {...credentials, allowHTTP1: true,
           ...(maxStreamsArg
               ? {settings: {maxConcurrentStreams: Number(maxStreamsArg.split('=')[1])}}
               : {})},
          handle)
    : http.createServer(handle);
server.on('session', () => { server_stats.http2_sessions += 1; });

server.on('connection', (socket) => {
  server_stats.connections_opened += 1;
  server_stats.open_connections += 1;
  server_stats.peak_open_connections =
      Math.max(server_stats.peak_open_connections, server_stats.open_connections);
  socket.on('close', () => { server_stats.open_connections -= 1; });
});
// Many concurrent streams in benchmarks: no per-server connection cap.
server.maxConnections = Infinity;
if (!tls) server.keepAliveTimeout = 30000;
// A deep accept queue: benchmarks open thousands of connections at once.
server.listen({port: Number(process.env.FAKE_UPSTREAM_PORT ?? 0), host: '127.0.0.1',
               backlog: 8192}, () => {
  console.error(`fake-upstream listening on 127.0.0.1:${server.address().port}` +
                (tlsHttp1 ? ' (https, HTTP/1.1)' : tls ? ' (https, h2)' : ''));
});
process.on('SIGTERM', () => process.exit(0));
