// Titles, renaming and search through chat-gateway's REST routes and in the
// chat app (clients/web/search.js) in Chromium.
//
// REST: PATCH /v1/sessions/{id} renames (400 for a bad title, 404 for an
// unknown session), GET /v1/search?query= finds the caller's messages with
// marked snippets and pages them, and refuses an empty or too long query
// with 400. Browser: the sidebar shows the server's titles, a double-click
// renames in place, and the search box lists hits that open their session;
// a message carrying markup meant to run script shows up in a snippet as
// text, and nothing runs. Every wait is on something the page or the server
// shows, never on time.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, postJson, SOURCE_DIR, poll } from './harness.mjs';
import { BROWSER_SKIP, launchChromium, newContext } from './chromium.mjs';

const MATCH_START = '\uE000';
const MATCH_END = '\uE001';
const XSS = '<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2</script>';

async function chat(base, session, message) {
  const res = await postJson(base, '/v1/chat', { session_id: session, message });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

async function listedTitle(base, session) {
  const body = await (await fetch(`${base}/v1/sessions`)).json();
  return body.sessions?.find((s) => s.session_id === session)?.title;
}

// The title is made after the answer: poll the listing (the event itself).
function awaitTitle(base, session) {
  return poll(() => listedTitle(base, session));
}

async function patch(base, session, body) {
  return fetch(`${base}/v1/sessions/${encodeURIComponent(session)}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('titles and search over REST', () => {
  let stack;
  before(async () => { stack = await startStack(); });
  after(async () => { await stack?.stop(); });

  it('titles a session from its first words and renames it with PATCH', async () => {
    await chat(stack.base, 'rest-title', 'Plan a trip to Lisbon in spring, please');
    assert.equal(await awaitTitle(stack.base, 'rest-title'), 'Plan a trip to Lisbon in');
    let res = await patch(stack.base, 'rest-title', { title: ' Lisbon 2026 ' });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.session.session_id, 'rest-title');
    assert.equal(body.session.title, 'Lisbon 2026');
    const history = await (await fetch(`${stack.base}/v1/sessions/rest-title/history`)).json();
    assert.equal(history.title, 'Lisbon 2026');

    res = await patch(stack.base, 'rest-title', { title: 'x'.repeat(201) });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, 3);
    res = await patch(stack.base, 'rest-title', { title: 'a\u0007b' });
    assert.equal(res.status, 400);
    res = await patch(stack.base, 'no-such-session', { title: 'x' });
    assert.equal(res.status, 404);
    assert.equal(await listedTitle(stack.base, 'rest-title'), 'Lisbon 2026');
  });

  it('searches, marks matches, pages, and refuses bad queries', async () => {
    for (let i = 0; i < 3; i++) await chat(stack.base, `rest-search-${i}`, `a capybara named ${i}`);
    const seen = new Set();
    let token = '';
    let pages = 0;
    do {
      const params = new URLSearchParams({ query: 'CAPYBARA', page_size: '2' });
      if (token) params.set('page_token', token);
      const res = await fetch(`${stack.base}/v1/search?${params}`);
      assert.equal(res.status, 200);
      const page = await res.json();
      assert.ok(page.hits.length <= 2);
      for (const hit of page.hits) {
        assert.match(hit.session_id, /^rest-search-/);
        assert.ok(hit.snippet.includes(`${MATCH_START}capybara${MATCH_END}`), hit.snippet);
        assert.ok(['user', 'assistant'].includes(hit.role));
        assert.match(hit.timestamp, /^\d{4}-/);
        seen.add(`${hit.session_id}#${hit.message_index ?? 0}`);
      }
      token = page.next_page_token ?? '';
    } while (token && ++pages < 10);
    assert.equal(seen.size, 6);  // Each question and its echoed answer.

    for (const query of ['', '   ', 'x'.repeat(501)]) {
      const res = await fetch(`${stack.base}/v1/search?${new URLSearchParams({ query })}`);
      assert.equal(res.status, 400, query.slice(0, 10));
    }
    const res = await fetch(`${stack.base}/v1/search?query=capybara&page_token=bogus`);
    assert.equal(res.status, 400);
  });
});

describe('titles and search in the chat app', { skip: BROWSER_SKIP }, () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startStack({ gatewayArgs: [`--web_root=${SOURCE_DIR}/clients`] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  async function openApp(hash = '') {
    const context = await newContext(browser);
    const page = await context.newPage();
    const dialogs = [];
    const errors = [];
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${stack.base}/web/${hash}`);
    await page.locator('#session-id').filter({ hasText: /./ }).waitFor();
    return { context, page, dialogs, errors };
  }

  it('shows server titles, renames in place, and keeps the rename', async () => {
    await chat(stack.base, 'web-rename', 'Recipes for a rainy Sunday afternoon at home');
    assert.equal(await awaitTitle(stack.base, 'web-rename'), 'Recipes for a rainy Sunday afternoon');
    // A fresh browser has no record of this chat: the title is the server's.
    const { context, page, errors } = await openApp();
    const item = page.locator('#session-list li[data-id="web-rename"]');
    await item.locator('.session-title', { hasText: 'Recipes for a rainy Sunday afternoon' }).waitFor();

    await item.locator('.session-title').dblclick();
    const input = item.locator('input.rename');
    await input.waitFor();
    await input.fill('Rainy day food');
    await input.press('Enter');
    await item.locator('.session-title', { hasText: 'Rainy day food' }).waitFor();
    assert.equal(await listedTitle(stack.base, 'web-rename'), 'Rainy day food');

    // Esc cancels a rename.
    await item.locator('.session-link').focus();
    await page.keyboard.press('F2');
    await input.waitFor();
    await input.fill('Not this');
    await input.press('Escape');
    await input.waitFor({ state: 'detached' });
    assert.equal(await item.locator('.session-title').textContent(), 'Rainy day food');
    assert.equal(await listedTitle(stack.base, 'web-rename'), 'Rainy day food');

    // Another browser sees the new title, in the list and on opening it.
    const other = await openApp('#web-rename');
    await other.page.locator('#chat-title', { hasText: 'Rainy day food' }).waitFor();
    await other.page.locator('#session-list .session-title', { hasText: 'Rainy day food' }).waitFor();
    await other.context.close();
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('lists search hits with inert snippets and opens their session', async () => {
    await chat(stack.base, 'web-xss', `The ocelot said ${XSS} and left`);
    await chat(stack.base, 'web-plain', 'nothing to see here');
    const { context, page, dialogs, errors } = await openApp();
    await page.locator('#session-list li[data-id="web-xss"]').waitFor();

    await page.fill('#search', 'ocelot');
    const hits = page.locator('#search-results a.search-hit');
    await hits.first().waitFor();
    assert.ok(await page.locator('#session-section').isHidden());
    const count = await hits.count();
    assert.ok(count >= 1);
    for (let i = 0; i < count; i++) {
      assert.equal(await hits.nth(i).getAttribute('data-id'), 'web-xss');
      assert.equal(await hits.nth(i).locator('mark').first().textContent(), 'ocelot');
    }
    // The markup is text: no element came from it, nothing ran.
    assert.equal(await page.locator('#search-results img, #search-results script').count(), 0);
    const snippets = (await page.locator('#search-results .search-hit-snippet').allTextContents()).join('\n');
    assert.ok(snippets.includes('<img') || snippets.includes('onerror') || snippets.includes('script'),
      snippets);
    assert.ok(!snippets.includes(MATCH_START) && !snippets.includes(MATCH_END));
    assert.equal(await page.evaluate(() => window.__xss), undefined);

    // Choosing a hit opens its conversation.
    await hits.first().click();
    await page.locator('#session-id', { hasText: 'web-xss' }).waitFor();
    await page.locator('.message.user .content', { hasText: 'The ocelot said' }).first().waitFor();
    assert.equal(await page.evaluate(() => window.__xss), undefined);

    // No hits: said so; Esc clears the search and the list comes back.
    await page.fill('#search', 'zzyzx');
    await page.locator('#search-status', { hasText: 'No messages match' }).waitFor();
    await page.press('#search', 'Escape');
    await page.locator('#session-section').waitFor({ state: 'visible' });
    assert.ok(await page.locator('#search-results').isHidden());
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
