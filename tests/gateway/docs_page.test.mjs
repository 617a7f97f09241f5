// The API docs page (clients/docs/, served at /docs): Swagger UI over
// /openapi.json, used in a real browser as a developer would: open the page,
// find POST /v1/chat, "Try it out", edit the body, Execute, read the answer;
// then, on a gateway whose chat-server has API keys, see the 401 and get past
// it with "Authorize". Playwright drives Debian's Chromium (chromium.mjs;
// CHAT_TEST_REQUIRE_BROWSER=1 turns a missing Chromium into a failure).
//
// Strategy for "works offline": the browser reaches the gateway under a name,
// chatd.test, that Chromium's host resolver maps to 127.0.0.1. Swagger UI
// hides some of what it fetches from elsewhere (the validator badge) when the
// page is on localhost or 127.0.0.1, so a loopback address would hide the
// very requests this test looks for. Every request the page makes goes
// through a route handler that records it and aborts any not bound for the
// gateway, so nothing leaves the machine even when the page misbehaves.
//
// chat-server's own HTTP port serves the same page (--http_web_root); that is
// checked with plain GETs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SERVER, SOURCE_DIR, postJson, startProcess, startStack,
} from './harness.mjs';
import { BROWSER_SKIP, launchChromium, newContext } from './chromium.mjs';

// Swagger UI comes from npm through scripts/web-assets.sh (build.sh runs it);
// without it the page is blank, which would fail below far less clearly.
if (!existsSync(join(SOURCE_DIR, 'clients/vendor/swagger-ui-bundle.js'))) {
  throw new Error('clients/vendor/swagger-ui-bundle.js is missing: run scripts/web-assets.sh');
}

const HOST = 'chatd.test';
const ADMIN_KEY = 'admin-secret-docs-3f9a1c-77e2b0';
const WEB_ROOT = () => `--web_root=${SOURCE_DIR}/clients`;

// Opens /docs of the gateway on `port` in a fresh context (no stored
// authorization). `requests` lists every URL the page asked for, `offsite`
// those not for the gateway (aborted), `errors` console errors and uncaught
// exceptions.
async function openDocs(browser, port) {
  const context = await newContext(browser);
  const origin = `http://${HOST}:${port}`;
  const requests = [];
  const offsite = [];
  const errors = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    requests.push(url);
    if (new URL(url).origin === origin) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${origin}/docs`);
  // The operations are rendered once /openapi.json has been read.
  await page.locator('.opblock').first().waitFor();
  return { context, page, requests, offsite, errors };
}

// The operation block of `method path` ("post", "/v1/chat").
function operation(page, method, path) {
  return page.locator(`.opblock.opblock-${method}`, {
    has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
  });
}

// Presses Execute on `op` (Try it out already on) and resolves to the status
// code and body the page shows for the answer. An earlier answer is cleared
// first ("Clear"), so what is read is the new one.
async function execute(op) {
  const clear = op.locator('button.btn-clear');
  if (await clear.count() > 0) {
    await clear.click();
    await op.locator('.live-responses-table').waitFor({ state: 'detached' });
  }
  await op.locator('button.execute').click();
  const row = op.locator('.live-responses-table tbody .response').first();
  const body = row.locator('.response-col_description pre').first();
  await body.waitFor();
  return {
    status: Number((await row.locator('.response-col_status').textContent()).trim()),
    body: await body.textContent(),
  };
}

// Opens POST /v1/chat, presses "Try it out" and puts `request` in the body.
async function tryChat(page, request) {
  const op = operation(page, 'post', '/v1/chat');
  await op.locator('.opblock-summary').click();
  await op.locator('button.try-out__btn').click();
  const body = op.locator('textarea.body-param__text');
  await body.waitFor();
  await body.fill(JSON.stringify(request, null, 2));
  return op;
}

describe('/docs in Chromium', { skip: BROWSER_SKIP }, () => {
  let browser;
  before(async () => {
    browser = await launchChromium([`--host-resolver-rules=MAP ${HOST} 127.0.0.1`]);
  });
  after(async () => { await browser?.close(); });

  describe('on a gateway without keys', () => {
    let stack;
    before(async () => { stack = await startStack({ gatewayArgs: [WEB_ROOT()] }); });
    after(async () => { await stack?.stop(); });

    it('loads from the gateway alone and lists the operations', async () => {
      const { context, page, requests, offsite, errors } = await openDocs(browser, stack.gateway.port);
      try {
        assert.equal(await page.title(), 'chatd API');
        assert.equal(await page.evaluate(() => window.ui.getConfigs().validatorUrl), null);
        for (const [method, path] of [['get', '/v1/status'], ['post', '/v1/chat'],
          ['post', '/v1/chat:stream'], ['get', '/v1/sessions/{session_id}/history'],
          ['get', '/v1/sessions'], ['post', '/v1/admin/keys']]) {
          assert.equal(await operation(page, method, path).count(), 1, `${method} ${path}`);
        }
        assert.ok(await page.locator('.opblock').count() >= 20);
        assert.deepEqual(offsite, []);
        const paths = requests.map((u) => new URL(u).pathname);
        for (const p of ['/docs', '/docs/docs.js', '/vendor/swagger-ui-bundle.js',
          '/vendor/swagger-ui.css', '/openapi.json']) {
          assert.ok(paths.includes(p), `${p} requested: ${paths}`);
        }
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });

    it('runs POST /v1/chat from "Try it out"', async () => {
      const { context, page, offsite, errors } = await openDocs(browser, stack.gateway.port);
      try {
        const op = operation(page, 'post', '/v1/chat');
        await op.locator('.opblock-summary').click();
        await op.locator('button.try-out__btn').click();
        const body = op.locator('textarea.body-param__text');
        // The document's example, not Swagger UI's "string" placeholders.
        assert.deepEqual(JSON.parse(await body.inputValue()),
          { message: 'Hello', session_id: 'docs-demo' });
        await body.fill(JSON.stringify({ message: 'Hello from the docs page', session_id: 'docs-1' }));
        const answer = await execute(op);
        assert.equal(answer.status, 200, answer.body);
        const reply = JSON.parse(answer.body);
        assert.equal(reply.response,
          'You said: "Hello from the docs page". This is the start of our conversation.');
        assert.equal(reply.session_id, 'docs-1');
        assert.equal(reply.turn_count, 1);
        // The turn was stored like any other.
        const stored = await (await fetch(`${stack.base}/v1/sessions/docs-1/history`)).json();
        assert.equal(stored.turn_count, 1);
        await op.locator('.live-responses-table').scrollIntoViewIfNeeded();
        await page.screenshot({
          path: `${process.env.CHAT_TEST_SCREENSHOT_DIR ?? '/tmp'}/chatd-docs-page.png`,
        });
        // The session routes suggest the example's session.
        const history = operation(page, 'get', '/v1/sessions/{session_id}/history');
        await history.locator('.opblock-summary').click();
        await history.locator('button.try-out__btn').click();
        assert.equal(await history.locator('tr[data-param-name="session_id"] input').inputValue(),
          'docs-demo');
        assert.deepEqual(offsite, []);
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  });

  describe('on a gateway in front of a chat-server with keys', () => {
    let stack;
    let key;
    before(async () => {
      stack = await startStack({ serverEnv: { CHAT_ADMIN_KEY: ADMIN_KEY }, gatewayArgs: [WEB_ROOT()] });
      const res = await postJson(stack.base, '/v1/admin/keys', { tenant: 'acme', name: 'docs' },
        { Authorization: `Bearer ${ADMIN_KEY}` });
      assert.equal(res.status, 200, await res.clone().text());
      key = (await res.json()).key;
    });
    after(async () => { await stack?.stop(); });

    it('answers 401 without a key and 200 after "Authorize" with a bearer key', async () => {
      const { context, page, offsite, errors } = await openDocs(browser, stack.gateway.port);
      try {
        const op = await tryChat(page, { message: 'Who am I?', session_id: 'docs-key' });
        let answer = await execute(op);
        assert.equal(answer.status, 401, answer.body);
        assert.equal(JSON.parse(answer.body).code, 16);

        await page.locator('.auth-wrapper button.authorize').click();
        const bearer = page.locator('.modal-ux .auth-container', { hasText: 'bearerAuth' });
        await bearer.locator('input').fill(key);
        await bearer.locator('button.authorize').click();
        // Authorized: the scheme's form shows a Logout button instead.
        await bearer.locator('button', { hasText: 'Logout' }).waitFor();
        await bearer.locator('button.btn-done').click();

        answer = await execute(op);
        assert.equal(answer.status, 200, answer.body);
        assert.equal(JSON.parse(answer.body).response,
          'You said: "Who am I?". This is the start of our conversation.');
        assert.deepEqual(offsite, []);
        // The browser reports the 401 as a failed load; nothing else.
        assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
      } finally {
        await context.close();
      }
    });
  });
});

describe("/docs on chat-server's own HTTP port", () => {
  let server;
  let base;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatd-docs-'));
    server = await startProcess(SERVER, [
      '--listen=127.0.0.1:0', '--http_listen=127.0.0.1:0', `--http_web_root=${SOURCE_DIR}/clients`,
      '--provider=echo', `--store=sqlite:${join(dir, 'chat.db')}`, '--shutdown_grace=1s',
    ]);
    // Logged before "listening on", which startProcess waited for.
    const m = /REST\/JSON on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.log());
    assert.ok(m, server.log());
    base = m[1];
  });
  after(async () => {
    if (!server) return;
    const code = await server.stop();
    assert.equal(code, 0, server.log());
  });

  it('serves the page, its script, Swagger UI and the document', async () => {
    let res = await fetch(`${base}/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    const html = await res.text();
    assert.match(html, /\/vendor\/swagger-ui-bundle\.js/);
    assert.match(html, /\/docs\/docs\.js/);
    for (const [path, type] of [['/docs/docs.js', /javascript/], ['/vendor/swagger-ui-bundle.js', /javascript/],
      ['/vendor/swagger-ui.css', /^text\/css/], ['/openapi.json', /json/]]) {
      res = await fetch(base + path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type'), type, path);
      await res.arrayBuffer();
    }
  });
});
