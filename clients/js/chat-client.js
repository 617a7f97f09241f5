// ChatClient: the browser / Node 18+ client of chatd's REST gateway.
//
// One ES module, no dependencies: it needs only fetch, TextDecoder and
// ReadableStream, which browsers and Node 18+ have. It keeps the Python
// template's ChatClient API (constructor(baseUrl), chat(message),
// chatStream(message, onChunk), getHistory(), reset(), a generated
// sessionId) and adds what the template lacked: errors carrying the HTTP
// status and message (ChatError), Server-Sent Events streaming on
// /v1/chat:stream that an AbortSignal stops, listSessions(), stats(),
// createSession(), deleteSession(), updateSession() (titles),
// searchMessages(), exportSession(), exportSessions(), importSession() and
// an optional API key (Authorization: Bearer).
// getHistory(), reset() and deleteSession() take an optional sessionId, so
// one client can manage every session (the web app's sidebar); the
// rate-limit headers of the last answer are kept in `rateLimit`.
//
//   import { ChatClient } from './chat-client.js';
//   const client = new ChatClient('http://localhost:8000');
//   console.log(await client.chat('Hello!'));
//   await client.chatStream('Tell me more', (text) => process.stdout.write(text));

// The HTTP status the gateway uses for each gRPC code (docs/ARCHITECTURE.md);
// used for errors that arrive inside an already started stream.
const HTTP_STATUS_OF_GRPC_CODE = {
  0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
  9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};

// A failed call: `status` is the HTTP status, `code` the gRPC status code
// from the gateway's error body ({"code", "message", "details"}),
// `retryAfter` the seconds of a Retry-After header (429, 503), if any.
export class ChatError extends Error {
  constructor(status, message, code = undefined, details = [], retryAfter = undefined) {
    super(message);
    this.name = 'ChatError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

// The x-ratelimit-* headers of an answer (API.md, "Per-key limits") as
// numbers, or undefined when the key has no limit (no such headers).
function rateLimitOf(headers) {
  const out = {};
  for (const kind of ['requests', 'tokens']) {
    for (const field of ['limit', 'remaining', 'reset']) {
      const value = headers?.get?.(`x-ratelimit-${field}-${kind}`);
      if (value === null || value === undefined) continue;
      const key = field + kind[0].toUpperCase() + kind.slice(1);
      out[key] = field === 'reset' ? value : Number(value);
    }
  }
  return Object.keys(out).length ? out : undefined;
}

function generateSessionId() {
  const random = globalThis.crypto?.randomUUID
    ? globalThis.crypto.randomUUID()
    : Math.random().toString(36).slice(2) + Date.now().toString(36);
  return `session-${random}`;
}

async function errorFrom(response) {
  const text = await response.text().catch(() => '');
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  // An ndjson error line wraps the body in {"error": ...}.
  if (body && body.error && typeof body.error === 'object') body = body.error;
  const message = body?.message ?? (text || response.statusText || `HTTP ${response.status}`);
  const retryAfter = Number(response.headers?.get?.('retry-after') ?? NaN);
  return new ChatError(response.status, message, body?.code, body?.details ?? [],
    Number.isFinite(retryAfter) ? retryAfter : undefined);
}

// Yields {event, data} for each Server-Sent Event of `body`, however the
// bytes were split.
async function* readSse(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      // Normalise line ends on whole text only: a "\r" at the end of a
      // chunk may be the first half of a "\r\n" split across two chunks,
      // and read alone it would end an event early.
      const keepCr = buffer.endsWith('\r');
      if (keepCr) buffer = buffer.slice(0, -1);
      buffer = buffer.replace(/\r\n?/g, '\n') + (keepCr ? '\r' : '');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        let id;
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          else if (line.startsWith('id:')) id = line.slice(3).replace(/^ /, '');
        }
        if (data.length) yield { event, data: data.join('\n'), id };
      }
    }
  } finally {
    // Stopped early (an error event, a throwing consumer): let the
    // connection go instead of leaving the body unread.
    await reader.cancel().catch(() => {});
  }
}

export class ChatClient {
  // `baseUrl`: the gateway, e.g. 'http://localhost:8000' ('' for the page's
  // own origin). Options: sessionId (else a new random one), apiKey (sent as
  // Authorization: Bearer), systemPrompt (for new sessions), fetch (a
  // fetch implementation; the global one by default).
  constructor(baseUrl = 'http://localhost:8000', options = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.sessionId = options.sessionId ?? generateSessionId();
    this.apiKey = options.apiKey;
    this.systemPrompt = options.systemPrompt;
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    // The x-ratelimit-* headers of the last answer ({limitRequests,
    // remainingRequests, resetRequests, limitTokens, ...}); undefined
    // when it had none.
    this.rateLimit = undefined;
    // The SSE id of the last event of the last stream ("<answer>:<n>"):
    // what resumeStream({lastEventId}) resumes after.
    this.lastEventId = undefined;
  }

  _noteResponse(response) {
    this.rateLimit = rateLimitOf(response.headers);
  }

  _sessionPath(options, suffix = '') {
    return `/v1/sessions/${encodeURIComponent(options.sessionId ?? this.sessionId)}${suffix}`;
  }

  // The template's name for making a session id.
  generateSessionId() {
    return generateSessionId();
  }

  _headers(extra = {}) {
    const headers = { ...extra };
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    return headers;
  }

  async _call(method, path, body, signal) {
    const init = { method, headers: this._headers(), signal };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await this._fetch(this.baseUrl + path, init);
    this._noteResponse(response);
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  _chatBody(message, options) {
    const body = { message, session_id: this.sessionId };
    const systemPrompt = options.systemPrompt ?? this.systemPrompt;
    if (systemPrompt !== undefined) body.system_prompt = systemPrompt;
    for (const key of ['model', 'max_tokens', 'temperature']) {
      if (options[key] !== undefined) body[key] = options[key];
    }
    // options.requestId: makes the turn idempotent (a retry with the same id
    // gets the stored answer, the model is not asked twice). Sent in the body,
    // not as Idempotency-Key, so a cross-origin call needs no extra header.
    if (options.requestId !== undefined) body.request_id = options.requestId;
    // Branches (chatStream): options.editTurnId makes `message` a new version
    // of that turn; options.regenerateTurnId (0: the last turn) asks that
    // turn's own message again, with `message` ''.
    if (options.editTurnId !== undefined) body.edit_turn_id = options.editTurnId;
    if (options.regenerateTurnId !== undefined) body.regenerate_turn_id = options.regenerateTurnId;
    return body;
  }

  // The headers of a chat call: options.idempotencyKey, the same as
  // requestId but sent as the standard Idempotency-Key header (API.md,
  // "Idempotent turns"); a key reused for another message is a ChatError 409.
  _chatHeaders(options, extra) {
    const headers = this._headers(extra);
    if (options.idempotencyKey !== undefined) headers['Idempotency-Key'] = options.idempotencyKey;
    return headers;
  }

  // Sends one message; resolves to the assistant's reply (a string), as the
  // template's client did. chatTurn() gives the whole answer.
  async chat(message, options = {}) {
    return (await this.chatTurn(message, options)).response;
  }

  // Sends one message; resolves to {response, session_id, timestamp,
  // turn_count, model, stop_reason, usage}.
  async chatTurn(message, options = {}) {
    const response = await this._fetch(`${this.baseUrl}/v1/chat`, {
      method: 'POST',
      headers: this._chatHeaders(options, { 'Content-Type': 'application/json' }),
      body: JSON.stringify(this._chatBody(message, options)),
      signal: options.signal,
    });
    this._noteResponse(response);
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  // Streams the reply over Server-Sent Events: onChunk(text) for each piece
  // as it arrives. Resolves to the final turn ({response, turn_count,
  // usage, ...}); rejects with a ChatError (also for an error that arrives
  // mid-stream) or the AbortError of `options.signal`, which stops the
  // stream and cancels the turn on the server (cancelStream; nothing is
  // stored). A connection lost mid-answer is resumed transparently (the
  // server kept the answer running), at most `options.maxResumes` (5) times
  // in a row; `this.lastEventId` is the last event seen, for a resume after a
  // page reload (resumeStream).
  async chatStream(message, onChunk = () => {}, options = {}) {
    this.lastEventId = undefined;
    return this._streamWithResume(() => this._fetch(`${this.baseUrl}/v1/chat:stream`, {
      method: 'POST',
      headers: this._chatHeaders(options, { 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
      body: JSON.stringify(this._chatBody(message, options)),
      signal: options.signal,
    }), onChunk, options);
  }

  // Picks up the session's streamed answer after `options.lastEventId` (the
  // SSE id of the last event seen; absent: the latest answer from its
  // start): onChunk(text) for each delta after it, then resolves to the
  // final turn as chatStream does. ChatError 404 if the answer is unknown or
  // expired. Options: sessionId, lastEventId, signal, maxResumes.
  async resumeStream(onChunk = () => {}, options = {}) {
    this.lastEventId = options.lastEventId;
    return this._streamWithResume(null, onChunk, options);
  }

  // Stops the session's running streamed answer, on whichever replica runs
  // it: {session_id, status: 'cancelled'}; ChatError 404 if none is running.
  // Options: sessionId, signal.
  async cancelStream(options = {}) {
    return this._call('POST', this._sessionPath(options, ':cancel'), undefined, options.signal);
  }

  _resumeRequest(options) {
    const headers = this._headers({ Accept: 'text/event-stream' });
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    return this._fetch(this.baseUrl + this._sessionPath(options, '/stream'), {
      method: 'GET', headers, signal: options.signal,
    });
  }

  // Reads a stream's events from `start()` (null: a resume from the
  // start), resuming with Last-Event-ID while the connection breaks before
  // the final event.
  async _streamWithResume(start, onChunk, options) {
    const maxResumes = options.maxResumes ?? 5;
    const onAbort = () => { this.cancelStream({ sessionId: options.sessionId }).catch(() => {}); };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let resumes = 0;
      for (;;) {
        let response;
        try {
          response = await (start ? start() : this._resumeRequest(options));
        } catch (err) {
          // No connection at all: resume only an answer that has started.
          if (options.signal?.aborted || !this.lastEventId || ++resumes > maxResumes) throw err;
          start = null;
          continue;
        }
        start = null;
        this._noteResponse(response);
        if (!response.ok) throw await errorFrom(response);
        try {
          for await (const { event, data, id } of readSse(response.body)) {
            const payload = JSON.parse(data);
            if (id) this.lastEventId = id;
            if (event === 'delta') {
              resumes = 0;
              onChunk(payload.text ?? '');
            } else if (event === 'done') {
              return payload;
            } else if (event === 'error') {
              throw new ChatError(HTTP_STATUS_OF_GRPC_CODE[payload.code] ?? 500,
                payload.message, payload.code, payload.details ?? []);
            }
          }
        } catch (err) {
          if (err instanceof ChatError || options.signal?.aborted || !this.lastEventId) throw err;
        }
        // The connection ended before the final event: resume after the
        // last event seen.
        if (!this.lastEventId || ++resumes > maxResumes) {
          throw new ChatError(502, 'the stream ended without a final event');
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  // The template's own streaming route (/chat-stream, raw text chunks).
  // Resolves to the whole text; an error after the first chunk arrives, as
  // the template sent it, inside the text as "\nError: <message>".
  async chatStreamText(message, onChunk = () => {}, options = {}) {
    const response = await this._fetch(`${this.baseUrl}/chat-stream`, {
      method: 'POST',
      headers: this._chatHeaders(options, { 'Content-Type': 'application/json' }),
      body: JSON.stringify(this._chatBody(message, options)),
      signal: options.signal,
    });
    if (!response.ok) throw await errorFrom(response);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let full = '';
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const chunk = decoder.decode(value, { stream: true });
        full += chunk;
        if (chunk) onChunk(chunk);
      }
      finished = true;
    } finally {
      // A consumer that throws stops the stream (and the turn): the server
      // sees the connection go instead of finishing an unread reply.
      if (!finished) await reader.cancel().catch(() => {});
    }
    // Bytes of a character cut by the end of the stream.
    const tail = decoder.decode();
    if (tail) {
      full += tail;
      onChunk(tail);
    }
    return full;
  }

  // {session_id, messages: [{role, content, timestamp}], turn_count, ...};
  // ChatError 404 for a session with no stored turn. Options: sessionId
  // (this client's by default), signal.
  async getHistory(options = {}) {
    return this._call('GET', this._sessionPath(options, '/history'), undefined, options.signal);
  }

  // Empties the session, keeping its system prompt: {status: 'reset' or
  // 'not_found', session_id, previous_turns}. Options as getHistory's.
  async reset(options = {}) {
    return this._call('POST', this._sessionPath(options, ':reset'), undefined, options.signal);
  }

  // Deletes the session: {status: 'cleared' or 'not_found', session_id}.
  // Options as getHistory's.
  async deleteSession(options = {}) {
    return this._call('DELETE', this._sessionPath(options), undefined, options.signal);
  }

  // A page of sessions, most recent first: {sessions: [...], next_page_token}.
  async listSessions({ pageSize, pageToken, signal } = {}) {
    const query = new URLSearchParams();
    if (pageSize !== undefined) query.set('page_size', String(pageSize));
    if (pageToken) query.set('page_token', pageToken);
    const suffix = query.toString() ? `?${query}` : '';
    return this._call('GET', `/v1/sessions${suffix}`, undefined, signal);
  }

  // {total_sessions, total_messages, avg_messages_per_session, ...}.
  async stats(options = {}) {
    return this._call('GET', '/v1/stats', undefined, options.signal);
  }

  // ---- branches ----------------------------------------------------------
  // Each message of getHistory() carries turn_id, sibling_turn_ids (the
  // versions of its turn, oldest first) and sibling_index. An edit or a
  // regeneration stores a new version as a sibling and shows it; the old
  // one stays, reachable with switchBranch().

  _branchOptions(options) {
    const body = {};
    for (const key of ['model', 'max_tokens', 'temperature']) {
      if (options[key] !== undefined) body[key] = options[key];
    }
    return body;
  }

  // A new answer to a turn's own message: options.turnId (absent: the last
  // turn). Resolves like chatTurn(), with the new version's turn_id.
  async regenerate(options = {}) {
    const body = this._branchOptions(options);
    if (options.turnId !== undefined) body.turn_id = options.turnId;
    return this._call('POST', this._sessionPath(options, ':regenerate'), body, options.signal);
  }

  // Replaces the user message of turn `turnId` with `message` and gets a new
  // answer. Resolves like chatTurn(), with the new version's turn_id.
  async editMessage(turnId, message, options = {}) {
    const body = { ...this._branchOptions(options), message };
    const path = this._sessionPath(options, `/turns/${encodeURIComponent(turnId)}:edit`);
    return this._call('POST', path, body, options.signal);
  }

  // Shows the branch through turn `turnId`; resolves to the new history
  // (getHistory()'s shape).
  async switchBranch(turnId, options = {}) {
    return this._call('POST', this._sessionPath(options, ':switchBranch'),
      { turn_id: turnId }, options.signal);
  }

  // regenerate() and editMessage(), streamed as chatStream() streams.
  async regenerateStream(onChunk = () => {}, options = {}) {
    return this.chatStream('', onChunk, { ...options, regenerateTurnId: options.turnId ?? 0 });
  }

  async editMessageStream(turnId, message, onChunk = () => {}, options = {}) {
    return this.chatStream(message, onChunk, { ...options, editTurnId: turnId });
  }

  // Creates an empty session, which every client of the tenant then lists
  // and reads, and makes it this client's session (chat() goes there next):
  // resolves to {session: {session_id, turns, title, created_at,
  // updated_at}, system_prompt}. Options: sessionId (absent: the server
  // makes one), systemPrompt (absent: this client's, else the server's
  // default), title, signal. ChatError 409 if the id is taken, 400 naming
  // the field for a bad id, prompt or title.
  async createSession({ sessionId, systemPrompt, title, signal } = {}) {
    const body = {};
    if (sessionId !== undefined) body.session_id = sessionId;
    const prompt = systemPrompt ?? this.systemPrompt;
    if (prompt !== undefined) body.system_prompt = prompt;
    if (title !== undefined) body.title = title;
    const created = await this._call('POST', '/v1/sessions', body, signal);
    this.sessionId = created.session.session_id;
    return created;
  }

  // Renames a session ('' clears its title): resolves to {session:
  // {session_id, title, turns, created_at, updated_at}}. ChatError 404 for
  // an unknown session, 400 for a title over 200 bytes or with control
  // characters. Options: title, sessionId (this client's by default),
  // signal.
  async updateSession({ title, sessionId, signal } = {}) {
    return this._call('PATCH', this._sessionPath({ sessionId }), { title }, signal);
  }

  // Full-text search over the caller's messages, best match first:
  // {hits: [{session_id, session_title, message_index, role, snippet,
  // timestamp}], next_page_token}. Each match in a snippet is wrapped in
  // SEARCH_MATCH_START and SEARCH_MATCH_END: show snippets as text
  // (splitSnippet() below), never as HTML. ChatError 400 for an empty or
  // too long (over 500 bytes) query.
  async searchMessages(query, { pageSize, pageToken, signal } = {}) {
    const params = new URLSearchParams({ query });
    if (pageSize !== undefined) params.set('page_size', String(pageSize));
    if (pageToken) params.set('page_token', pageToken);
    return this._call('GET', `/v1/search?${params}`, undefined, signal);
  }

  // ---- export and import -------------------------------------------------
  // A session as JSON, every branch: {session: {format_version, session_id,
  // title, system_prompt, created_at, updated_at, active_turn_id, messages:
  // [{turn_id, parent_turn_id, role, content, timestamp, model, usage,
  // cost_usd}]}, markdown: ''}; that object is also what importSession()
  // takes. With format 'markdown': {markdown} (the active branch).
  // ChatError 404 for an unknown session. Options: sessionId, format,
  // signal.
  async exportSession({ sessionId, format, signal } = {}) {
    const query = format ? `?format=${encodeURIComponent(format)}` : '';
    return this._call('GET', this._sessionPath({ sessionId }, `/export${query}`), undefined, signal);
  }

  // Every session of the caller's tenant (the key's), streamed as JSON
  // lines: calls onSession(session) for each as it arrives and resolves to
  // how many there were. A failure mid-stream rejects with a ChatError.
  async exportSessions(onSession = () => {}, { signal } = {}) {
    const response = await this._fetch(`${this.baseUrl}/v1/sessions:export`, {
      headers: this._headers({ Accept: 'application/x-ndjson' }), signal,
    });
    this._noteResponse(response);
    if (!response.ok) throw await errorFrom(response);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    let count = 0;
    const takeLine = (line) => {
      if (!line.trim()) return;
      const event = JSON.parse(line);
      if (event.error) {
        throw new ChatError(HTTP_STATUS_OF_GRPC_CODE[event.error.code] ?? 500,
          event.error.message, event.error.code, event.error.details ?? []);
      }
      count++;
      onSession(event.result.session);
    };
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        takeLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    }
    takeLine(buffered + decoder.decode());
    return count;
  }

  // Stores an exported session (exportSession()'s `session`, or its whole
  // answer) in the caller's tenant, ids and times kept: resolves to
  // {session: {session_id, turns, title, created_at, updated_at}}. ChatError
  // 409 if the id is taken (unless options.replace), 400 naming the field
  // for a bad export.
  async importSession(exported, { replace = false, signal } = {}) {
    const session = exported?.session ?? exported;
    return this._call('POST', '/v1/sessions:import', { session, replace }, signal);
  }
}

// The characters around each match in a search snippet (U+E000, U+E001).
export const SEARCH_MATCH_START = '\uE000';
export const SEARCH_MATCH_END = '\uE001';

// A snippet as [{text, match}] parts, in order, for rendering as text
// nodes (and <mark> elements for the matches).
export function splitSnippet(snippet) {
  const parts = [];
  let rest = String(snippet ?? '');
  while (rest) {
    const start = rest.indexOf(SEARCH_MATCH_START);
    if (start < 0) {
      parts.push({ text: rest, match: false });
      break;
    }
    if (start > 0) parts.push({ text: rest.slice(0, start), match: false });
    rest = rest.slice(start + 1);
    let end = rest.indexOf(SEARCH_MATCH_END);
    if (end < 0) end = rest.length;
    if (end > 0) parts.push({ text: rest.slice(0, end), match: true });
    rest = rest.slice(end + 1);
  }
  // A stray end marker (typed by a user) is not shown.
  return parts.map((p) => ({ ...p, text: p.text.replaceAll(SEARCH_MATCH_END, '') }))
    .filter((p) => p.text);
}

export default ChatClient;
