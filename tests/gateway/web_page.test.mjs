// The chat app (clients/web/, served at /web/) in a real browser, used as a
// person would: type and press Enter, watch the reply stream in, keep
// several chats in the sidebar, switch and delete them, reload, stop a
// reply with the button or Esc, retry, set an API key, on a phone and in
// dark mode; and payloads meant to run script stay text. Every wait is on
// something the page or the server shows, never on time.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, postJson, SOURCE_DIR, words } from './harness.mjs';
import { BROWSER_SKIP, launchChromium, newContext } from './chromium.mjs';

const ADMIN_KEY = 'admin-secret-web-3f9a1c-77d0e2';

// A fresh browser profile (its own localStorage) on the app. `dialogs`
// collects alert/confirm/prompt, `errors` uncaught page errors, `blocked`
// what the page's Content-Security-Policy refused: all must stay empty (the
// sanitizer, not the policy, is what keeps payloads inert).
async function openApp(browser, base, contextOptions = {}, hash = '') {
  const context = await newContext(browser, contextOptions);
  const page = await context.newPage();
  const dialogs = [];
  const errors = [];
  const blocked = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
  });
  await page.goto(`${base}/web/${hash}`);
  await page.locator('#session-id').filter({ hasText: /./ }).waitFor();
  return { context, page, dialogs, errors, blocked };
}

const assistant = (page) => page.locator('.message.assistant');
const lastAnswer = (page) => assistant(page).last();

// Sends `text` with the Enter key and waits for the stored turn's usage line.
async function sendAndWait(page, text) {
  const before = await page.locator('.message.assistant .meta', { hasText: 'tokens' }).count();
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
  await page.locator('.message.assistant .meta', { hasText: 'tokens' }).nth(before).waitFor();
}

// Streaming is visible: part of the reply on screen, marked busy, with Stop
// offered instead of Send. The page itself watches for that moment and sets
// window.sawStreaming, so a short reply cannot end before the test looks,
// however slowly the test drives the browser.
async function watchForStreaming(page) {
  await page.evaluate(() => {
    window.sawStreaming = false;
    const observer = new MutationObserver(() => {
      const last = [...document.querySelectorAll('.message.assistant')].at(-1);
      if (last?.getAttribute('aria-busy') === 'true' && last.querySelector('.content').textContent.length > 0
          && document.getElementById('stop').checkVisibility()
          && !document.getElementById('send').checkVisibility()) {
        window.sawStreaming = true;
        observer.disconnect();
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
}

async function waitForPartialAnswer(page) {
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('.message.assistant');
    const last = all[all.length - 1];
    return last?.getAttribute('aria-busy') === 'true' && last.querySelector('.content').textContent.length > 0;
  });
}

async function sessionTitles(page) {
  return page.locator('#session-list .session-title').allTextContents();
}

async function history(base, id, headers = {}) {
  const res = await fetch(`${base}/v1/sessions/${encodeURIComponent(id)}/history`, { headers });
  return { status: res.status, body: await res.json() };
}

describe('the chat app in Chromium', { skip: BROWSER_SKIP }, () => {
  let stack;
  let browser;
  before(async () => {
    // 40 ms between words: a reply takes about half a second to stream.
    stack = await startStack({ echoDelay: '40ms', gatewayArgs: [`--web_root=${SOURCE_DIR}/clients`] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('streams a reply, titles the chat by its first message, shows usage, and reloads it', async () => {
    const { page, context, dialogs, errors } = await openApp(browser, stack.base);
    const session = await page.textContent('#session-id');
    assert.match(session, /^session-/);
    assert.ok(await page.locator('#welcome').isVisible());
    assert.equal(await page.evaluate(() => document.activeElement.id), 'message');

    await watchForStreaming(page);
    await page.fill('#message', 'Hello from the page');
    await page.press('#message', 'Enter');
    await lastAnswer(page).locator('.meta', { hasText: 'tokens' }).waitFor();
    assert.ok(await page.evaluate(() => window.sawStreaming),
      'never saw part of the reply, marked busy, with Stop offered instead of Send');
    assert.equal((await lastAnswer(page).locator('.content').textContent()).trim(),
      'You said: "Hello from the page". This is the start of our conversation.');
    assert.match(await lastAnswer(page).locator('.meta').textContent(), /^echo · \d+ in \/ \d+ out tokens$/);
    assert.equal(await lastAnswer(page).getAttribute('aria-busy'), null);
    assert.ok(await page.locator('#send').isVisible());
    assert.equal(await page.getAttribute('#conversation', 'aria-live'), 'polite');
    assert.equal(await page.textContent('#chat-title'), 'Hello from the page');
    assert.deepEqual(await sessionTitles(page), ['Hello from the page']);
    assert.equal(await page.locator('#session-list [aria-current="page"]').textContent(), 'Hello from the page');
    assert.equal(new URL(page.url()).hash, `#${session}`);

    // The Send button works too; the echo proves the server remembers.
    await page.fill('#message', 'What did I say?');
    await page.click('#send');
    await assistant(page).nth(1).locator('.meta', { hasText: 'tokens' }).waitFor();
    assert.match(await assistant(page).nth(1).textContent(), /Before that you said: "Hello from the page"/);

    // A reload shows the stored conversation of the same session, with the
    // usage this browser saw.
    await page.reload();
    await assistant(page).nth(1).locator('.meta', { hasText: 'tokens' }).waitFor();
    assert.equal(await page.locator('.message.user').count(), 2);
    assert.equal(await page.textContent('#session-id'), session);
    assert.equal(await page.textContent('#chat-title'), 'Hello from the page');
    // So does opening /web/ with no hash: the last session is remembered.
    await page.goto(`${stack.base}/web/`);
    await assistant(page).nth(1).waitFor();
    assert.equal(await page.textContent('#session-id'), session);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('keeps several chats in the sidebar, switches between them and deletes them', async () => {
    const { page, context, errors } = await openApp(browser, stack.base);
    const ids = {};
    for (const name of ['alpha', 'beta', 'gamma']) {
      await page.click('#new-chat');
      assert.equal(await page.locator('.message').count(), 0, 'a new chat starts empty');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'message');
      await sendAndWait(page, `${name} first message`);
      ids[name] = await page.textContent('#session-id');
    }
    assert.equal(new Set(Object.values(ids)).size, 3);
    const titles = await sessionTitles(page);
    const order = ['gamma', 'beta', 'alpha'].map((n) => titles.indexOf(`${n} first message`));
    assert.ok(order.every((i) => i >= 0) && order[0] < order[1] && order[1] < order[2], titles.join('|'));

    // Switching shows that chat's history, from the server.
    await page.locator('.session-link', { hasText: 'alpha first message' }).click();
    await page.locator('.message.user', { hasText: 'alpha first message' }).waitFor();
    assert.equal(await page.textContent('#session-id'), ids.alpha);
    assert.equal(await page.textContent('#chat-title'), 'alpha first message');
    assert.equal(await page.locator('.message.user').count(), 1);
    await sendAndWait(page, 'alpha second');
    assert.match(await lastAnswer(page).textContent(), /Before that you said: "alpha first message"/);
    // Back goes to the chat before.
    await page.goBack();
    await page.locator('.message.user', { hasText: 'gamma first message' }).waitFor();

    // Deleting asks first; Cancel keeps the chat.
    const item = (name) => page.locator('#session-list li', { hasText: `${name} first message` });
    await item('beta').hover();
    await item('beta').locator('.delete-session').click();
    assert.equal(await page.textContent('#confirm-delete-name'), 'beta first message');
    await page.click('#confirm-delete button[value="cancel"]');
    assert.equal(await item('beta').count(), 1);
    assert.equal((await history(stack.base, ids.beta)).status, 200);
    // Delete removes it from the sidebar and from the server.
    await item('beta').locator('.delete-session').click();
    await page.click('#confirm-delete-button');
    await item('beta').waitFor({ state: 'detached' });
    assert.equal((await history(stack.base, ids.beta)).status, 404);
    // Deleting the open chat leaves a new, empty one.
    await page.locator('.session-link', { hasText: 'alpha first message' }).click();
    await page.locator('.message.user', { hasText: 'alpha second' }).waitFor();
    await item('alpha').locator('.delete-session').click();
    await page.click('#confirm-delete-button');
    await item('alpha').waitFor({ state: 'detached' });
    assert.equal(await page.textContent('#chat-title'), 'New chat');
    assert.ok(await page.locator('#welcome').isVisible());
    assert.notEqual(await page.textContent('#session-id'), ids.alpha);
    assert.equal((await history(stack.base, ids.alpha)).status, 404);

    // Another browser titles the chats from their histories.
    const other = await openApp(browser, stack.base);
    await other.page.locator('.session-title', { hasText: 'gamma first message' }).waitFor();
    await other.context.close();
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('keeps script in a message, a reply, a title or a session id inert and visible as text', async () => {
    const { page, context, dialogs, errors, blocked } = await openApp(browser, stack.base);
    const payload = '<img src=x onerror="window.__xss=\'img\';alert(1)"> '
      + '<script>window.__xss="script"</script> '
      + '[click me](javascript:window.__xss=\'link\') '
      + '<a href="javascript:window.__xss=\'a\'">raw link</a> '
      + '<svg onload="window.__xss=\'svg\'"></svg>';
    await sendAndWait(page, payload);
    // The user's message is shown exactly as typed.
    assert.equal(await page.locator('.message.user .content').textContent(), payload);
    // The echoed reply is markdown: the HTML in it shows as text, and the
    // markdown link lost its javascript: target.
    const answer = await lastAnswer(page).locator('.content').textContent();
    for (const piece of ['<img src=x onerror=', '<script>window.__xss="script"</script>', 'raw link', '<svg onload=']) {
      assert.ok(answer.includes(piece), `${piece} is visible in: ${answer}`);
    }
    const found = await page.evaluate(() => ({
      xss: window.__xss,
      active: document.querySelectorAll('.message img, .message script, .message svg, .message iframe, [onerror], [onload]').length,
      badLinks: [...document.querySelectorAll('.message a')]
        .filter((a) => !/^https?:/.test(a.getAttribute('href') ?? 'https:')).length,
    }));
    assert.deepEqual(found, { xss: undefined, active: 0, badLinks: 0 });
    // Clicking what is left of the link runs nothing.
    const link = lastAnswer(page).locator('a', { hasText: 'click me' });
    if (await link.count()) await link.click();
    // The title (sidebar and heading) is text too.
    const title = (await sessionTitles(page))[0];
    assert.ok(title.startsWith('<img src=x onerror='), title);
    assert.ok((await page.textContent('#chat-title')).startsWith('<img src=x'));
    await page.reload();
    await lastAnswer(page).waitFor();
    assert.equal(await page.locator('.message.user .content').textContent(), payload);

    // A session id in the URL that is not one is shown as text and not
    // used.
    const badId = '<img src=x onerror=window.__xss=1>';
    await page.goto(`${stack.base}/web/#${encodeURIComponent(badId)}`);
    await page.locator('#notice', { hasText: `Not a session id: ${badId}` }).waitFor();
    assert.notEqual(await page.textContent('#session-id'), badId);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator('#notice img').count(), 0);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
    assert.deepEqual(blocked, []);
    await context.close();
  });

  it('stops a reply with the Stop button and with Esc; nothing is stored; Retry sends again', async () => {
    const { page, context } = await openApp(browser, stack.base);
    const session = await page.textContent('#session-id');
    await page.fill('#message', words(80));
    await page.click('#send');
    await waitForPartialAnswer(page);
    // The chat is listed while its first reply streams...
    const pendingTitle = `${words(80).slice(0, 57)}…`;
    assert.equal((await sessionTitles(page))[0], pendingTitle);
    await page.click('#stop');
    await page.locator('.turn-stopped', { hasText: 'Stopped. This reply was not saved.' }).waitFor();
    // ...and no longer once it was stopped: the session does not exist.
    assert.ok(!(await sessionTitles(page)).includes(pendingTitle));
    assert.equal((await history(stack.base, session)).status, 404);
    assert.ok(await page.locator('#send').isVisible());
    // The server serves a session's calls in order: once the next turn is
    // answered, the stopped one is over, and it was not stored (the echo
    // says this is the start of the conversation).
    await sendAndWait(page, 'after stop');
    assert.match(await lastAnswer(page).textContent(), /This is the start of our conversation/);

    // Esc stops as well, and Retry sends the same message again.
    await page.fill('#message', words(60));
    await page.press('#message', 'Enter');
    await waitForPartialAnswer(page);
    await page.keyboard.press('Escape');
    await lastAnswer(page).locator('.turn-stopped').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'message');
    await lastAnswer(page).locator('.turn-stopped button.retry').click();
    await lastAnswer(page).locator('.meta', { hasText: 'tokens' }).waitFor();
    // The retried message shows once; the first stopped one stays on screen
    // (marked as not saved) until the chat is reloaded.
    assert.deepEqual(await page.locator('.message.user .content').allTextContents(),
      [words(80), 'after stop', words(60)]);
    const { body } = await history(stack.base, session);
    assert.equal(body.turn_count, 2);
    assert.deepEqual(body.messages.filter((m) => m.role === 'user').map((m) => m.content),
      ['after stop', words(60)]);
    await page.reload();
    await lastAnswer(page).locator('.content', { hasText: 'w59' }).waitFor();
    assert.deepEqual(await page.locator('.message.user .content').allTextContents(),
      ['after stop', words(60)]);
    await context.close();
  });

  it('sends on Enter, adds a line on Shift+Enter', async () => {
    const { page, context } = await openApp(browser, stack.base);
    await page.click('#message');
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    assert.equal(await page.inputValue('#message'), 'line one\nline two');
    assert.equal(await page.locator('.message').count(), 0, 'Shift+Enter sent nothing');
    await page.keyboard.press('Enter');
    await lastAnswer(page).locator('.meta', { hasText: 'tokens' }).waitFor();
    assert.equal(await page.locator('.message.user .content').textContent(), 'line one\nline two');
    assert.equal(await page.inputValue('#message'), '');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'message');
    // An empty or blank message is not sent.
    await page.keyboard.press('Enter');
    await page.keyboard.type('   ');
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('.message.user').count(), 1);
    // Ctrl+Shift+O starts a new chat, ready to type in.
    const before = await page.textContent('#session-id');
    await page.keyboard.press('Control+Shift+O');
    await page.locator('#welcome').waitFor();
    assert.notEqual(await page.textContent('#session-id'), before);
    assert.equal(await page.locator('.message').count(), 0);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'message');
    await context.close();
  });

  it('starts a chat with a system prompt, model and temperature, and copies code', async () => {
    const { page, context } = await openApp(browser, stack.base, {
      permissions: ['clipboard-read', 'clipboard-write'],
    });
    await page.click('#chat-options summary');
    await page.fill('#system-prompt', 'You answer in code.');
    await page.fill('#model', 'claude-sonnet-4-6');
    await page.fill('#temperature', '0.5');
    const code = "console.log('<b>hi</b>');\nconst a = 1 < 2;";
    await sendAndWait(page, `Some code:\n\n\`\`\`js\n${code}\n\`\`\`\n`);
    // The model answered (echo reports the model asked for) and, having a
    // price, the turn has a cost.
    assert.match(await lastAnswer(page).locator('.meta').textContent(),
      /^claude-sonnet-4-6 · \d+ in \/ \d+ out tokens · \$0\.\d+$/);
    const session = await page.textContent('#session-id');
    assert.equal((await history(stack.base, session)).body.system_prompt, 'You answer in code.');
    // Once the chat exists its settings are shown, not editable.
    assert.ok(await page.locator('#existing-chat-fields').isVisible());
    assert.match(await page.textContent('#fixed-system-prompt'),
      /You answer in code\. · Model: claude-sonnet-4-6 · Temperature: 0\.5/);
    // The next message uses the same model.
    await sendAndWait(page, 'again');
    assert.match(await lastAnswer(page).locator('.meta').textContent(), /^claude-sonnet-4-6 /);

    const block = assistant(page).first().locator('.code-block');
    assert.equal(await block.locator('.code-head span').textContent(), 'js');
    assert.equal(await block.locator('code').textContent(), `${code}\n`);
    await block.locator('.copy-code').click();
    await block.locator('.copy-code', { hasText: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${code}\n`);

    // A new chat offers the settings used last.
    await page.click('#new-chat');
    assert.equal(await page.inputValue('#model'), 'claude-sonnet-4-6');
    await context.close();
  });

  it('works at phone width (375x740): the sidebar slides in and out', async () => {
    const { page, context } = await openApp(browser, stack.base,
      { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    assert.ok(!(await page.locator('#sidebar').isVisible()), 'the sidebar starts hidden');
    assert.ok(await page.locator('#open-sidebar').isVisible());
    await sendAndWait(page, 'From my phone');
    const noHorizontalScroll = () => page.evaluate(
      () => document.scrollingElement.scrollWidth <= window.innerWidth);
    assert.ok(await noHorizontalScroll());
    const composer = await page.locator('#composer').boundingBox();
    assert.ok(composer.x >= 0 && composer.x + composer.width <= 375 && composer.y + composer.height <= 740,
      JSON.stringify(composer));

    await page.tap('#open-sidebar');
    await page.locator('#sidebar').waitFor({ state: 'visible' });
    assert.equal(await page.getAttribute('#open-sidebar', 'aria-expanded'), 'true');
    assert.ok(await page.evaluate(() => document.getElementById('sidebar').contains(document.activeElement)),
      'focus moves into the sidebar');
    // Esc closes it and gives focus back to the button.
    await page.keyboard.press('Escape');
    await page.locator('#sidebar').waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'open-sidebar');

    // Picking a chat closes the sidebar and opens it.
    await page.tap('#open-sidebar');
    await page.locator('.session-link', { hasText: 'Hello from the page' }).tap();
    await page.locator('#sidebar').waitFor({ state: 'hidden' });
    await page.locator('.message.user', { hasText: 'Hello from the page' }).waitFor();
    assert.ok(await noHorizontalScroll());
    await context.close();
  });

  it('follows the system\'s dark mode', async () => {
    const { page, context } = await openApp(browser, stack.base, { colorScheme: 'dark' });
    const colours = () => page.evaluate(() => {
      const body = getComputedStyle(document.body);
      return [body.backgroundColor, body.color];
    });
    const luminance = (rgb) => {
      const [r, g, b] = rgb.match(/\d+/g).map(Number);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    let [bg, fg] = await colours();
    assert.ok(luminance(bg) < 60 && luminance(fg) > 180, `dark: ${bg} on ${fg}`);
    await page.emulateMedia({ colorScheme: 'light' });
    [bg, fg] = await colours();
    assert.ok(luminance(bg) > 240 && luminance(fg) < 60, `light: ${bg} on ${fg}`);
    await context.close();
  });
});

describe('the chat app with API keys', { skip: BROWSER_SKIP }, () => {
  let stack;
  let browser;
  let key;
  before(async () => {
    stack = await startStack({
      echoDelay: '5ms',
      serverEnv: { CHAT_ADMIN_KEY: ADMIN_KEY },
      gatewayArgs: [`--web_root=${SOURCE_DIR}/clients`],
    });
    const res = await postJson(stack.base, '/v1/admin/keys',
      { tenant: 'web', name: 'browser', limits: { requests_per_minute: 50 } },
      { Authorization: `Bearer ${ADMIN_KEY}` });
    assert.equal(res.status, 200, await res.clone().text());
    key = (await res.json()).key;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('shows a 401 with Retry, takes the key, keeps it, and sends it', async () => {
    const { page, context, dialogs } = await openApp(browser, stack.base);
    // Listing the sessions needs the key: the page says so.
    await page.locator('#notice', { hasText: '401' }).waitFor();
    await page.fill('#message', 'hello with a key');
    await page.press('#message', 'Enter');
    const failure = lastAnswer(page).locator('.turn-error');
    await failure.filter({ hasText: 'Error 401: missing API key' }).waitFor();
    assert.equal(await failure.getAttribute('role'), 'alert');

    await failure.locator('button.set-key').click();
    assert.ok(await page.locator('#settings').isVisible());
    assert.equal(await page.evaluate(() => document.activeElement.id), 'api-key');
    assert.equal(await page.getAttribute('#api-key', 'type'), 'password');
    await page.fill('#api-key', key);
    await page.press('#api-key', 'Enter');
    await page.locator('#settings').waitFor({ state: 'hidden' });
    await failure.locator('button.retry').click();
    await lastAnswer(page).locator('.meta', { hasText: 'tokens' }).waitFor();
    assert.equal(await page.locator('.message.user').count(), 1);
    // The key's rate limit is shown with the usage.
    assert.match(await lastAnswer(page).locator('.meta').textContent(),
      /4\d of 50 requests left this minute/);
    assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('chatd.apiKey'))), key);
    const session = await page.textContent('#session-id');
    assert.equal((await history(stack.base, session, { Authorization: `Bearer ${key}` })).status, 200);

    // After a reload the key is still used: history and sidebar load.
    await page.reload();
    await lastAnswer(page).locator('.content', { hasText: 'hello with a key' }).waitFor();
    await page.locator('.session-title', { hasText: 'hello with a key' }).waitFor();
    assert.ok(await page.locator('#notice').isHidden());
    assert.ok(!(await page.evaluate(() => document.body.innerText)).includes(key));

    // Forgetting the key brings the 401 back.
    await page.click('#open-settings');
    await page.click('#clear-key');
    await page.locator('#notice', { hasText: '401' }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('chatd.apiKey')), null);
    assert.deepEqual(dialogs, []);
    await context.close();
  });
});
