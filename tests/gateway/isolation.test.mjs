// The tenant isolation matrix (issue 9, point 4) over REST, through
// chat-gateway in front of chat-server on a SQLite file.
//
// Strategy: the routes come from the gateway's own /openapi.json, and the
// first test fails if one of them is not in ROUTES below (or ROUTES names one
// that is gone), so a new route cannot be left out of the matrix. Tenants A
// and B each get a key from POST /v1/admin/keys and use the same session ids.
// For every route that names a session, B's answer for A's session is
// compared byte for byte (status, headers but x-request-id, traceparent and
// date, body)
// with B's answer for that id recorded before anyone created it: exactly what
// a session that exists nowhere gets. A's history must be identical
// afterwards. Every message A sends carries a marker that must never appear
// in anything B receives. The matrix runs on a SQLite file, and on a fresh
// schema of the PostgreSQL server CHAT_TEST_POSTGRES_DSN names when it is set
// (made with psql); tests/integration/tenant_isolation_test.cc runs the same
// checks over gRPC.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { postJson, startStack, poll } from './harness.mjs';

const ADMIN_KEY = 'isolation-admin-key-0123456789';
const A_MARKER = 'alpha-secret';

// Every route of /openapi.json, by what the matrix does with it:
//   open:    no tenant data; A, B and no key get the same answer.
//   chat:    a turn in a session; both tenants chat in the same session id.
//   session: names a session; B's answer for A's session is compared with
//            its answer for a session that exists nowhere.
//   list:    B's listing holds B's sessions only, paged or not, also with a
//            page token made for A.
//   stats:   B's counts are B's only.
//   search:  B's search never finds A's messages, also with A's page token.
//   admin:   needs the admin key; a tenant's key gets the same refusal for
//            A and B, and the admin's per-tenant answers keep tenants apart.
//   stateless: needs a key but reads and writes no session (Complete,
//            ListModels): B's answer never holds what A sent.
//   transfer: ExportSessions and ImportSession: B's export holds B's
//            sessions only; B's import of A's export lands in B's tenant.
//   create:  CreateSession: B creating A's session id makes B's own session
//            (no 409 that would tell B the id is taken), A's is untouched.
const ROUTES = {
  'GET /v1/status': 'open',
  'GET /': 'open',
  'POST /v1/chat': 'chat',
  'POST /chat': 'chat',
  'POST /v1/chat:stream': 'chat',
  'POST /chat-stream': 'chat',
  'GET /v1/sessions/{session_id}/history': 'session',
  'GET /history/{session_id}': 'session',
  'POST /v1/sessions/{session_id}:reset': 'session',
  'POST /reset/{session_id}': 'session',
  'DELETE /v1/sessions/{session_id}': 'session',
  'DELETE /history/{session_id}': 'session',
  'GET /v1/sessions': 'list',
  'GET /sessions': 'list',
  'GET /v1/stats': 'stats',
  'GET /stats': 'stats',
  'PATCH /v1/sessions/{session_id}': 'session',
  'GET /v1/search': 'search',
  'POST /v1/sessions/{session_id}:regenerate': 'session',
  'POST /v1/sessions/{session_id}/turns/{turn_id}:edit': 'session',
  'POST /v1/sessions/{session_id}:switchBranch': 'session',
  'GET /v1/sessions/{session_id}/export': 'session',
  'GET /v1/sessions:export': 'transfer',
  'POST /v1/sessions:import': 'transfer',
  'POST /v1/sessions': 'create',
  'GET /v1/sessions/{session_id}/stream': 'session',
  'POST /v1/sessions/{session_id}:cancel': 'session',
  'POST /v1/admin/keys': 'admin',
  'GET /v1/admin/keys': 'admin',
  'POST /v1/admin/keys/{key_id}:revoke': 'admin',
  'GET /v1/admin/usage': 'admin',
  'POST /v1/chat:complete': 'stateless',
  'POST /v1/chat:completeStream': 'stateless',
  'GET /v1/chat:models': 'stateless',
};

const routesOf = (kind) => Object.keys(ROUTES).filter((r) => ROUTES[r] === kind);

const auth = (key) => (key ? { Authorization: `Bearer ${key}` } : {});

// Calls `route` ("METHOD /template") with `key`, filling {session_id} and
// {key_id} from `params` and sending `body` as JSON on a POST. Resolves to
// what the client saw: status, headers (but the per-request ones) and the
// whole body as text.
async function call(base, route, key, { params = {}, body, query = '' } = {}) {
  const [method, template] = route.split(' ');
  const path = template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name]));
  const headers = { ...auth(key) };
  const hasBody = method === 'POST' || method === 'PATCH';
  if (hasBody) headers['Content-Type'] = 'application/json';
  // A PATCH without a body of its own tries to rename the session; the
  // branch routes try to edit or show its first turn.
  const defaultBody = method === 'PATCH' ? { title: 'renamed by bravo' }
    : template.endsWith(':edit') ? { message: 'edited by bravo' }
      : template.endsWith(':switchBranch') ? { turn_id: 1 } : {};
  const res = await fetch(base + path + query, {
    method,
    headers,
    body: hasBody ? JSON.stringify(body ?? defaultBody) : undefined,
  });
  const seen = {};
  for (const [name, value] of res.headers) {
    // Per request by design: the request id and the trace.
    if (!['x-request-id', 'traceparent', 'date'].includes(name)) seen[name] = value;
  }
  return { route, status: res.status, headers: seen, body: await res.text() };
}

async function newKey(base, tenant) {
  const res = await postJson(base, '/v1/admin/keys', { tenant, name: 'isolation' },
    auth(ADMIN_KEY));
  assert.equal(res.status, 200, await res.clone().text());
  const created = await res.json();
  assert.equal(created.api_key.tenant, tenant);
  return { tenant, key: created.key, id: created.api_key.id };
}

// One turn through a chat route; resolves to the whole answer.
async function chat(base, route, tenant, session, message, extra = {}) {
  const answer = await call(base, route, tenant.key,
    { body: { message, session_id: session, ...extra } });
  assert.equal(answer.status, 200, `${route}: ${answer.body}`);
  return answer;
}

async function history(base, tenant, session) {
  return call(base, 'GET /v1/sessions/{session_id}/history', tenant.key,
    { params: { session_id: session } });
}

// session id -> turns, from one list route, a page of `pageSize` at a time
// (no paging parameters at all when pageSize is 0).
async function listAll(base, route, tenant, pageSize) {
  const sessions = {};
  let token = '';
  for (let page = 0; page < 100; page++) {
    const query = pageSize === 0 ? ''
      : `?page_size=${pageSize}${token ? `&page_token=${encodeURIComponent(token)}` : ''}`;
    const answer = await call(base, route, tenant.key, { query });
    assert.equal(answer.status, 200, `${route}${query}: ${answer.body}`);
    const json = JSON.parse(answer.body);
    for (const s of json.sessions ?? []) {
      assert.equal(sessions[s.session_id], undefined, `${s.session_id} listed twice`);
      sessions[s.session_id] = s.turns;
    }
    token = json.next_page_token ?? '';
    if (!token || pageSize === 0) break;
  }
  return sessions;
}

// The --store of a new, empty schema on the test PostgreSQL server.
function freshPostgresStore(dsn) {
  const schema = `gw_isolation_${process.pid}_${Date.now()}`;
  execFileSync('psql', [dsn, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE SCHEMA ${schema}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  // Later keywords override earlier ones in a key=value string.
  return `--store=postgres:${dsn} options='-c search_path=${schema}'`;
}

const STORES = [['SQLite', () => [], /\(store sqlite:/]];
const POSTGRES_DSN = process.env.CHAT_TEST_POSTGRES_DSN ?? '';
if (POSTGRES_DSN) {
  STORES.push(['PostgreSQL', () => [freshPostgresStore(POSTGRES_DSN)], /\(store postgres:/]);
} else if (process.env.CHAT_TEST_REQUIRE_POSTGRES === '1') {
  it('has PostgreSQL (CHAT_TEST_REQUIRE_POSTGRES=1)', () => {
    assert.fail('CHAT_TEST_POSTGRES_DSN is not set');
  });
}

for (const [storeName, storeArgs, storeLine] of STORES) describe(`tenant isolation through chat-gateway on ${storeName}`, () => {
  let stack;
  let base;
  let a;
  let b;
  before(async () => {
    // A --store after the harness's SQLite one replaces it.
    stack = await startStack({
      echoDelay: '0s', serverEnv: { CHAT_ADMIN_KEY: ADMIN_KEY }, serverArgs: storeArgs(),
    });
    assert.match(stack.server.log(), storeLine);
    base = stack.base;
    a = await newKey(base, 'tenant-a');
    b = await newKey(base, 'tenant-b');
  });
  after(async () => { await stack?.stop(); });

  it('covers every route /openapi.json lists, and only those', async () => {
    const res = await fetch(`${base}/openapi.json`);
    assert.equal(res.status, 200);
    const listed = [];
    for (const [path, operations] of Object.entries((await res.json()).paths)) {
      for (const method of Object.keys(operations)) {
        if (['get', 'put', 'post', 'delete', 'patch'].includes(method)) {
          listed.push(`${method.toUpperCase()} ${path}`);
        }
      }
    }
    const missing = listed.filter((r) => !(r in ROUTES));
    assert.deepEqual(missing, [], 'routes the isolation matrix does not cover');
    const gone = Object.keys(ROUTES).filter((r) => !listed.includes(r));
    assert.deepEqual(gone, [], 'routes in the matrix that /openapi.json no longer lists');
  });

  it("answers B about A's session exactly as about a session that exists nowhere", async () => {
    const sessionRoutes = routesOf('session');
    // What B is told while "shared" exists nowhere (reading, resetting and
    // deleting a session that does not exist changes nothing).
    const probe = async (session) => {
      const answers = [];
      for (const route of sessionRoutes) {
        answers.push(await call(base, route, b.key,
          { params: { session_id: session, turn_id: 1 } }));
      }
      return answers;
    };
    const nowhere = await probe('shared');
    assert.equal(nowhere[0].status, 404, nowhere[0].body);
    const never = await probe('never-used');

    // A creates "shared" through every chat route, with its own system prompt.
    let first = true;
    for (const route of routesOf('chat')) {
      await chat(base, route, a, 'shared', `${A_MARKER} via ${route}`,
        first ? { system_prompt: `${A_MARKER} prompt` } : {});
      first = false;
    }
    // The session's title is made after its first turn: wait for it, so
    // that the history compared below cannot change by itself.
    let before;
    await poll(async () => {
      before = await history(base, a, 'shared');
      return JSON.parse(before.body).title;
    });
    assert.equal(before.status, 200);
    assert.ok(JSON.parse(before.body).title, before.body);
    assert.equal(JSON.parse(before.body).turn_count, routesOf('chat').length);

    // Every answer B gets is the "nowhere" one, to the byte; and for an id
    // nobody used, the same but for the id.
    const after = await probe('shared');
    for (let i = 0; i < sessionRoutes.length; i++) {
      assert.deepEqual(after[i], nowhere[i], sessionRoutes[i]);
      assert.ok(!after[i].body.includes(A_MARKER), sessionRoutes[i]);
    }
    const neverAgain = await probe('never-used');
    for (let i = 0; i < sessionRoutes.length; i++) {
      assert.deepEqual(neverAgain[i], never[i], sessionRoutes[i]);
      assert.equal(never[i].status, nowhere[i].status, sessionRoutes[i]);
      assert.equal(never[i].body.replaceAll('never-used', 'shared'), nowhere[i].body,
        sessionRoutes[i]);
    }

    // A's session is as it was, timestamps included; and A's own answer is
    // not the "nowhere" one, so the comparison above could have failed.
    const unchanged = await history(base, a, 'shared');
    assert.deepEqual(unchanged.body, before.body);
    assert.notEqual(unchanged.status, nowhere[0].status);
  });

  it("exports B's sessions only, and B's import of A's export stays B's", async () => {
    const g = await newKey(base, 'tenant-g');
    const h = await newKey(base, 'tenant-h');
    await chat(base, 'POST /v1/chat', g, 'moved', `${A_MARKER} to move`);
    await chat(base, 'POST /v1/chat', h, 'own', 'bravo');
    const ofH = await call(base, 'GET /v1/sessions:export', h.key,
      { query: '' });
    assert.equal(ofH.status, 200, ofH.body);
    assert.ok(ofH.body.includes('"own"'), ofH.body);
    assert.ok(!ofH.body.includes(A_MARKER) && !ofH.body.includes('"moved"'), ofH.body);

    const exported = await call(base, 'GET /v1/sessions/{session_id}/export', g.key,
      { params: { session_id: 'moved' } });
    assert.equal(exported.status, 200, exported.body);
    const before = await history(base, g, 'moved');
    const request = JSON.parse(exported.body);
    request.replace = true;
    request.session.messages[0].content = 'bravo overwrote';
    const imported = await call(base, 'POST /v1/sessions:import', h.key, { body: request });
    assert.equal(imported.status, 200, imported.body);
    assert.deepEqual((await history(base, g, 'moved')).body, before.body);
    assert.ok((await history(base, h, 'moved')).body.includes('bravo overwrote'));
  });

  it("lets B create A's session id as B's own, telling B nothing of A's", async () => {
    const c = await newKey(base, 'tenant-i');
    const d = await newKey(base, 'tenant-j');
    const [route] = routesOf('create');
    const ofC = await call(base, route, c.key,
      { body: { session_id: 'created', system_prompt: `${A_MARKER} prompt` } });
    assert.equal(ofC.status, 200, ofC.body);
    const before = await history(base, c, 'created');
    assert.equal(before.status, 200, before.body);
    // D gets what it would get for a free id: its own empty session.
    const ofD = await call(base, route, d.key, { body: { session_id: 'created' } });
    assert.equal(ofD.status, 200, ofD.body);
    assert.ok(!ofD.body.includes(A_MARKER), ofD.body);
    const again = await call(base, route, d.key, { body: { session_id: 'created' } });
    assert.equal(again.status, 409, again.body);
    assert.ok(!(await history(base, d, 'created')).body.includes(A_MARKER));
    assert.deepEqual((await history(base, c, 'created')).body, before.body);
  });

  it("never finds A's messages in B's search, even with A's page token", async () => {
    // Fresh tenants, so the usage counts the admin test checks stay as they
    // are: e plays A, f plays B.
    const e = await newKey(base, 'tenant-e');
    const f = await newKey(base, 'tenant-f');
    for (let i = 0; i < 3; i++) {
      await chat(base, 'POST /v1/chat', e, `searched-${i}`, `${A_MARKER} quokka ${i}`);
    }
    await chat(base, 'POST /v1/chat', f, 'searched-b', 'bravo quokka');
    for (const route of routesOf('search')) {
      const ofA = await call(base, route, e.key, { query: `?query=quokka&page_size=2` });
      assert.equal(ofA.status, 200, ofA.body);
      const pageOfA = JSON.parse(ofA.body);
      assert.equal(pageOfA.hits.length, 2, ofA.body);
      assert.ok(pageOfA.next_page_token, ofA.body);
      for (const query of [`?query=${A_MARKER}`, '?query=quokka', '?query=quokka&page_size=100']) {
        const ofB = await call(base, route, f.key, { query });
        assert.equal(ofB.status, 200, ofB.body);
        assert.ok(!ofB.body.includes(A_MARKER), `${query}: ${ofB.body}`);
        for (const hit of JSON.parse(ofB.body).hits ?? []) {
          assert.equal(hit.session_id, 'searched-b', ofB.body);
        }
      }
      const replayed = await call(base, route, f.key, {
        query: `?query=quokka&page_size=2&page_token=${encodeURIComponent(pageOfA.next_page_token)}`,
      });
      assert.ok(!replayed.body.includes(A_MARKER), replayed.body);
      if (replayed.status !== 400) assert.equal(replayed.status, 200, replayed.body);
    }
  });

  it('keeps separate histories when both chat in one session id through every chat route', async () => {
    const chatRoutes = routesOf('chat');
    for (const route of chatRoutes) {
      const fromA = await chat(base, route, a, 'together', `${A_MARKER} ${route}`);
      const fromB = await chat(base, route, b, 'together', `bravo ${route}`);
      assert.ok(!fromB.body.includes(A_MARKER), `${route}: ${fromB.body}`);
      assert.ok(!fromA.body.includes('bravo'), `${route}: ${fromA.body}`);
    }
    for (const route of ['GET /v1/sessions/{session_id}/history', 'GET /history/{session_id}']) {
      const ofA = await call(base, route, a.key, { params: { session_id: 'together' } });
      const ofB = await call(base, route, b.key, { params: { session_id: 'together' } });
      assert.equal(ofA.status, 200, ofA.body);
      assert.equal(ofB.status, 200, ofB.body);
      const aMessages = JSON.parse(ofA.body).messages;
      const bMessages = JSON.parse(ofB.body).messages;
      assert.equal(aMessages.length, 2 * chatRoutes.length, route);
      assert.equal(bMessages.length, 2 * chatRoutes.length, route);
      assert.deepEqual(aMessages.filter((m) => m.role === 'user').map((m) => m.content),
        chatRoutes.map((r) => `${A_MARKER} ${r}`), route);
      assert.deepEqual(bMessages.filter((m) => m.role === 'user').map((m) => m.content),
        chatRoutes.map((r) => `bravo ${r}`), route);
      assert.ok(!ofB.body.includes(A_MARKER), route);
    }
  });

  it("lists and counts only B's sessions for B, paged or not, even with A's page token", async () => {
    // Fresh tenants, so the listings hold exactly what this test made.
    const c = await newKey(base, 'tenant-c');
    const d = await newKey(base, 'tenant-d');
    const ofC = {};
    const ofD = {};
    for (let i = 0; i < 5; i++) {
      const id = `s-${i}`;
      await chat(base, 'POST /v1/chat', c, id, `${A_MARKER} ${i}`);
      await chat(base, 'POST /chat', c, id, `${A_MARKER} again ${i}`);
      ofC[id] = 2;
      if (i < 3) {
        await chat(base, 'POST /v1/chat', d, id, 'bravo');
        ofD[id] = 1;
      }
    }
    for (const route of routesOf('list')) {
      for (const pageSize of [0, 1, 2, 100]) {
        const what = `${route} page_size=${pageSize}`;
        assert.deepEqual(await listAll(base, route, c, pageSize), ofC, what);
        assert.deepEqual(await listAll(base, route, d, pageSize), ofD, what);
      }
      // C's page token, replayed by D: refused, or a page of D's own.
      const page = await call(base, route, c.key, { query: '?page_size=2' });
      const token = JSON.parse(page.body).next_page_token;
      assert.ok(token, `${route}: ${page.body}`);
      for (const pageSize of [1, 2, 100]) {
        const replayed = await call(base, route, d.key,
          { query: `?page_size=${pageSize}&page_token=${encodeURIComponent(token)}` });
        if (replayed.status === 400) continue;
        assert.equal(replayed.status, 200, replayed.body);
        for (const s of JSON.parse(replayed.body).sessions ?? []) {
          assert.equal(ofD[s.session_id], s.turns, `${route}: ${replayed.body}`);
        }
      }
    }
    for (const route of routesOf('stats')) {
      const statsOfC = JSON.parse((await call(base, route, c.key)).body);
      const statsOfD = JSON.parse((await call(base, route, d.key)).body);
      assert.equal(Number(statsOfC.total_sessions), 5, route);
      assert.equal(Number(statsOfC.total_messages), 20, route);
      assert.equal(Number(statsOfD.total_sessions), 3, route);
      assert.equal(Number(statsOfD.total_messages), 6, route);
    }
    // D deleting all of its sessions leaves C's listing whole.
    for (const id of Object.keys(ofD)) {
      const res = await call(base, 'DELETE /v1/sessions/{session_id}', d.key,
        { params: { session_id: id } });
      assert.equal(res.status, 200, res.body);
    }
    assert.deepEqual(await listAll(base, 'GET /sessions', d, 0), {});
    assert.deepEqual(await listAll(base, 'GET /sessions', c, 0), ofC);
  });

  it('answers the open routes alike for A, B and no key', async () => {
    for (const route of routesOf('open')) {
      const answers = [await call(base, route, a.key), await call(base, route, b.key),
        await call(base, route, '')];
      assert.equal(answers[0].status, 200, route);
      assert.deepEqual(answers[1], answers[0], route);
      assert.deepEqual(answers[2], answers[0], route);
    }
  });

  it('answers the stateless routes from the caller\'s own request only', async () => {
    for (const route of routesOf('stateless')) {
      const body = (text) => ({ messages: [{ role: 'user', content: text }] });
      const withA = await call(base, route, a.key, { body: body(`${A_MARKER} stateless`) });
      assert.equal(withA.status, 200, `${route}: ${withA.body}`);
      const withB = await call(base, route, b.key, { body: body('b asks') });
      assert.equal(withB.status, 200, `${route}: ${withB.body}`);
      assert.ok(!withB.body.includes(A_MARKER), `${route}: ${withB.body}`);
      assert.equal((await call(base, route, '', { body: body('x') })).status, 401, route);
    }
  });

  it("refuses the admin routes to A's and B's keys alike, and keeps tenants apart in the admin's answers", async () => {
    for (const route of routesOf('admin')) {
      const options = { params: { key_id: a.id }, body: { tenant: 'tenant-b', name: 'x' } };
      const withA = await call(base, route, a.key, options);
      const withB = await call(base, route, b.key, { ...options, params: { key_id: b.id } });
      assert.equal(withA.status, 401, `${route}: ${withA.body}`);
      assert.deepEqual(withB, withA, route);
    }
    // A's key was not revoked by those calls.
    await chat(base, 'POST /v1/chat', a, 'still-works', A_MARKER);

    // The admin's view per tenant: B's keys and usage only. Usage reaches the
    // store within a second; poll (bounded) until B's calls are in.
    const keysOfB = JSON.parse((await call(base, 'GET /v1/admin/keys', ADMIN_KEY,
      { query: '?tenant=tenant-b' })).body).keys;
    assert.deepEqual(keysOfB.map((k) => [k.tenant, k.id]), [['tenant-b', b.id]]);
    // B made one turn per chat route (in the separate-histories test) and one
    // completion per stateless POST route.
    const callsOfB = routesOf('chat').length +
      routesOf('stateless').filter((r) => r.startsWith('POST ')).length;
    let usage;
    await poll(async () => {
      usage = JSON.parse((await call(base, 'GET /v1/admin/usage', ADMIN_KEY,
        { query: '?tenant=tenant-b' })).body);
      return Number(usage.tenants?.[0]?.calls ?? 0) >= callsOfB;
    });
    assert.deepEqual(usage.tenants.map((u) => [u.tenant, Number(u.calls)]),
      [['tenant-b', callsOfB]], JSON.stringify(usage));
    assert.deepEqual(usage.keys.map((u) => [u.tenant, u.key_id]), [['tenant-b', b.id]]);
  });
});
