// Edit and regenerate as branches, through chat-gateway: the REST routes
// (on SQLite, and on PostgreSQL when CHAT_TEST_POSTGRES_DSN is set), the SSE
// stream of an edit, and the web app's Edit / Regenerate / ‹ 2/3 › controls
// in Chromium. The echo provider's reply names the user message before the
// new one, so each answer shows which branch the model saw. Every wait is on
// something the page or the server shows.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startStack, postJson, SOURCE_DIR } from './harness.mjs';
import { BROWSER_SKIP, launchChromium, newContext } from './chromium.mjs';

const DSN = process.env.CHAT_TEST_POSTGRES_DSN;

async function json(res) {
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

async function say(base, session, message) {
  return json(await postJson(base, '/v1/chat', { session_id: session, message }));
}

async function history(base, session) {
  return json(await fetch(`${base}/v1/sessions/${session}/history`));
}

const users = (h) => h.messages.filter((m) => m.role === 'user').map((m) => m.content);

// The stores the REST suite runs on: SQLite always, PostgreSQL (a fresh
// schema) when a DSN is given.
const stores = [['SQLite', () => []]];
if (DSN) {
  stores.push(['PostgreSQL', () => {
    const schema = `branches_${process.pid}_${Date.now()}`;
    execFileSync('psql', [DSN, '-q', '-c', `CREATE SCHEMA ${schema}`]);
    return [`--store=postgres:${DSN} options='-c search_path=${schema}'`];
  }]);
}

for (const [name, storeArgs] of stores) {
  describe(`branches over REST on ${name}`, () => {
    let stack;
    before(async () => { stack = await startStack({ serverArgs: storeArgs() }); });
    after(async () => { await stack?.stop(); });

    it('edits, regenerates and switches, and the model sees the active branch', async () => {
      const base = stack.base;
      await say(base, 'rest', 'one');
      await say(base, 'rest', 'two');
      await say(base, 'rest', 'three');

      const edited = await json(await postJson(base, '/v1/sessions/rest/turns/2:edit', { message: 'deux' }));
      assert.equal(edited.turn_id, 4);
      assert.equal(edited.turn_count, 2);
      assert.match(edited.response, /You said: "deux"\. Before that you said: "one"/);

      let h = await history(base, 'rest');
      assert.deepEqual(users(h), ['one', 'deux']);
      assert.deepEqual(h.messages[2].sibling_turn_ids, [2, 4]);
      assert.equal(h.messages[2].sibling_index, 1);
      assert.equal(h.messages[3].turn_id, 4);

      const again = await json(await postJson(base, '/v1/sessions/rest:regenerate', {}));
      assert.equal(again.turn_id, 5);
      assert.match(again.response, /You said: "deux"/);

      const back = await json(await postJson(base, '/v1/sessions/rest:switchBranch', { turn_id: 2 }));
      assert.deepEqual(users(back), ['one', 'two', 'three']);
      assert.equal(back.turn_count, 3);
      assert.deepEqual(back.messages[2].sibling_turn_ids, [2, 4, 5]);
      assert.equal(back.messages[2].sibling_index, 0);
      // The next turn continues the branch shown.
      const next = await say(base, 'rest', 'four');
      assert.match(next.response, /Before that you said: "three"/);
      assert.equal(next.turn_count, 4);
      h = await history(base, 'rest');
      assert.deepEqual(users(h), ['one', 'two', 'three', 'four']);
    });

    it('streams an edit over SSE and refuses unknown turns', async () => {
      const base = stack.base;
      await say(base, 'sse', 'alpha');
      const res = await postJson(base, '/v1/chat:stream',
        { session_id: 'sse', message: 'beta', edit_turn_id: 1 }, { Accept: 'text/event-stream' });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /event: delta/);
      const done = JSON.parse(text.split('event: done\ndata: ')[1].split('\n')[0]);
      assert.equal(done.turn_id, 2);
      assert.match(done.response, /You said: "beta"\. This is the start of our conversation/);

      const missing = await postJson(base, '/v1/sessions/sse/turns/9:edit', { message: 'x' });
      assert.equal(missing.status, 404);
      const nowhere = await postJson(base, '/v1/sessions/none:regenerate', {});
      assert.equal(nowhere.status, 404);
      const bad = await postJson(base, '/v1/sessions/sse:switchBranch', { turn_id: 7 });
      assert.equal(bad.status, 404);
      const both = await postJson(base, '/v1/chat:stream',
        { session_id: 'sse', message: '', edit_turn_id: 1, regenerate_turn_id: 1 });
      assert.equal(both.status, 400);
      assert.deepEqual(users(await history(base, 'sse')), ['beta']);
    });
  });
}

describe('branches in the web app', { skip: BROWSER_SKIP }, () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startStack({ echoDelay: '5ms', gatewayArgs: [`--web_root=${SOURCE_DIR}/clients`] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('edits a message, regenerates an answer and switches versions', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${stack.base}/web/`);
    await page.locator('#session-id').filter({ hasText: /./ }).waitFor();
    const session = await page.textContent('#session-id');
    const answers = page.locator('.message.assistant');
    const userMessages = page.locator('.message.user');

    for (const [i, text] of ['first', 'second'].entries()) {
      await page.fill('#message', text);
      await page.press('#message', 'Enter');
      // The controls come once the stored turn has its id.
      await answers.nth(i).locator('button.regenerate').waitFor();
    }
    await userMessages.nth(1).locator('button.edit-message').waitFor();

    // Edit the second message: it streams a new answer that saw "first".
    await userMessages.nth(1).locator('button.edit-message').click();
    await userMessages.nth(1).locator('.edit-input').fill('second, edited');
    await userMessages.nth(1).locator('.save-edit').click();
    await answers.nth(1).locator('.branch-position', { hasText: '2/2' }).waitFor();
    assert.equal(await userMessages.count(), 2);
    assert.equal(await userMessages.nth(1).locator('.content').textContent(), 'second, edited');
    assert.match(await answers.nth(1).locator('.content').textContent(),
      /You said: "second, edited"\. Before that you said: "first"/);

    // Back to version 1: the original message and answer.
    await answers.nth(1).locator('button.branch-prev').click();
    await answers.nth(1).locator('.branch-position', { hasText: '1/2' }).waitFor();
    assert.equal(await userMessages.nth(1).locator('.content').textContent(), 'second');
    assert.ok(await answers.nth(1).locator('button.branch-prev').isDisabled());

    // Regenerate the first answer: a third version of nothing but turn 1.
    await answers.nth(0).locator('button.regenerate').click();
    await answers.nth(0).locator('.branch-position', { hasText: '2/2' }).waitFor();
    assert.equal(await userMessages.count(), 1);
    assert.match(await answers.nth(0).locator('.content').textContent(),
      /You said: "first"\. This is the start of our conversation/);

    // The server agrees, and a reload shows the same.
    const h = await history(stack.base, session);
    assert.deepEqual(users(h), ['first']);
    assert.equal(h.messages[0].sibling_turn_ids.length, 2);
    await page.reload();
    await answers.nth(0).locator('.branch-position', { hasText: '2/2' }).waitFor();
    // Back to the first version of turn 1: its branch, with the newest
    // version of each later turn (the edit).
    await answers.nth(0).locator('button.branch-prev').click();
    await answers.nth(1).locator('.branch-position', { hasText: '2/2' }).waitFor();
    assert.deepEqual(await userMessages.locator('.content').allTextContents(),
      ['first', 'second, edited']);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
