// The chat app: wires the sidebar (sessions.js), the conversation
// (conversation.js), the message box (composer.js) and this browser's
// records (store.js) to one ChatClient (/js/chat-client.js).
//
// The open session is in the URL (#<session id>) and in localStorage, so a
// reload, a bookmark or the Back button come back to it; its messages are
// always read from the server.
import { ChatClient } from '/js/chat-client.js';
import { Composer } from './composer.js';
import { Conversation, describeTurn } from './conversation.js';
import { Branches } from './branches.js';
import { forgetStream, pendingStream, rememberStream } from './resume.js';
import { copyCode } from './markdown.js';
import { SearchBox, enableRename } from './search.js';
import { SessionList } from './sessions.js';
import * as store from './store.js';

const $ = (id) => document.getElementById(id);

const client = new ChatClient('', { apiKey: store.apiKey() || undefined });
const conversation = new Conversation($('conversation'), $('welcome'));
const narrow = matchMedia('(max-width: 768px)');

// The open chat: `exists` once the server stored a turn of it.
let current = { id: '', exists: false, title: '' };
// The reply streaming now: {controller, sessionId}.
let streaming = null;
// Counts openSession() calls, so a slow history answer for a chat the user
// already left is dropped.
let openSeq = 0;

// ---- notices -------------------------------------------------------------

function showNotice(text, action) {
  const notice = $('notice');
  const p = document.createElement('span');
  p.textContent = text;
  const children = [p];
  if (action) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = action.label;
    button.addEventListener('click', action.run);
    children.push(button);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'icon dismiss';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', hideNotice);
  children.push(close);
  notice.replaceChildren(...children);
  notice.hidden = false;
}

function hideNotice() {
  $('notice').hidden = true;
  $('notice').replaceChildren();
}

function announce(text) {
  $('status').textContent = text;
}

function keyAction() {
  return { label: 'Set API key', run: openSettings };
}

function describeError(e) {
  return `${e.status ? `Error ${e.status}: ` : ''}${e.message || String(e)}`;
}

// ---- sidebar -------------------------------------------------------------

const sessions = new SessionList({
  client,
  list: $('session-list'),
  empty: $('sessions-empty'),
  more: $('more-sessions'),
  onDelete: confirmDelete,
  onError: (e) => showNotice(`Could not list conversations. ${describeError(e)}`,
    e.status === 401 ? keyAction() : { label: 'Retry', run: () => { hideNotice(); sessions.load(); } }),
});

const search = new SearchBox({
  client,
  input: $('search'),
  results: $('search-results'),
  sessions: $('session-section'),
  status: $('search-status'),
  more: $('more-results'),
  onOpen: () => { if (narrow.matches) closeSidebar({ focusToggle: false }); },
});
enableRename({
  client,
  list: $('session-list'),
  onRenamed: (id, title) => {
    store.updateSessionRecord(id, { title });
    sessions.upsertTitle(id, title);
    if (id === current.id) setTitle(title);
  },
  onError: (e) => showNotice(`Could not rename. ${describeError(e)}`),
});

function sidebarOpen() {
  return document.body.classList.contains('sidebar-open');
}

function openSidebar() {
  document.body.classList.add('sidebar-open');
  $('open-sidebar').setAttribute('aria-expanded', 'true');
  $('scrim').hidden = false;
  ($('session-list').querySelector('[aria-current]') ?? $('new-chat')).focus();
}

function closeSidebar({ focusToggle = true } = {}) {
  if (!sidebarOpen()) return;
  document.body.classList.remove('sidebar-open');
  $('open-sidebar').setAttribute('aria-expanded', 'false');
  $('scrim').hidden = true;
  if (focusToggle) $('open-sidebar').focus();
}

$('open-sidebar').addEventListener('click', openSidebar);
$('close-sidebar').addEventListener('click', () => closeSidebar());
$('scrim').addEventListener('click', () => closeSidebar());
$('session-list').addEventListener('click', (event) => {
  if (event.target.closest('.session-link') && narrow.matches) closeSidebar({ focusToggle: false });
});

// ---- chat settings -------------------------------------------------------

function readNewChatOptions() {
  const options = {};
  const systemPrompt = $('system-prompt').value.trim();
  if (systemPrompt) options.systemPrompt = systemPrompt;
  const model = $('model').value.trim();
  if (model) options.model = model;
  const temperature = $('temperature').value.trim();
  if (temperature !== '') options.temperature = Number(temperature);
  return options;
}

function showOptionsFor(chat, record, systemPrompt) {
  $('new-chat-fields').hidden = chat.exists;
  $('existing-chat-fields').hidden = !chat.exists;
  if (chat.exists) {
    const parts = [systemPrompt || '(server default)'];
    if (record.model) parts.push(`Model: ${record.model}`);
    if (typeof record.temperature === 'number') parts.push(`Temperature: ${record.temperature}`);
    $('fixed-system-prompt').textContent = parts.join(' · ');
  } else {
    const d = store.newChatDefaults();
    $('system-prompt').value = typeof d.systemPrompt === 'string' ? d.systemPrompt : '';
    $('model').value = typeof d.model === 'string' ? d.model : '';
    $('temperature').value = typeof d.temperature === 'number' ? String(d.temperature) : '';
  }
}

// ---- opening chats -------------------------------------------------------

function setTitle(title) {
  current.title = title;
  $('chat-title').textContent = title || 'New chat';
  document.title = title ? `${title} · chatd` : 'chatd';
}

function showChat(id) {
  current = { id, exists: false, title: '' };
  client.sessionId = id;
  store.setCurrentSession(id);
  if (decodeHash() !== id) history.replaceState(null, '', `#${encodeURIComponent(id)}`);
  $('session-id').textContent = id;
  sessions.setCurrent(id);
  setTitle('');
}

function newChat() {
  stopStreaming();
  openSeq += 1;
  hideNotice();
  showChat(client.generateSessionId());
  conversation.clear();
  showOptionsFor(current, {}, '');
  if (narrow.matches) closeSidebar({ focusToggle: false });
  composer.focus();
}

async function openSession(id) {
  stopStreaming();
  const seq = ++openSeq;
  hideNotice();
  showChat(id);
  conversation.clear();
  const record = store.sessionRecord(id);
  if (typeof record.title === 'string') setTitle(record.title);
  let history;
  try {
    history = await client.getHistory({ sessionId: id });
  } catch (e) {
    if (seq !== openSeq) return;
    if (e.status === 404) {
      // Not stored (yet): a new chat under this id.
      showOptionsFor(current, {}, '');
      resumePending(id, 0);
      return;
    }
    showOptionsFor(current, {}, '');
    showNotice(`Could not load this conversation. ${describeError(e)}`,
      e.status === 401 ? keyAction() : { label: 'Retry', run: () => openSession(id) });
    return;
  }
  if (seq !== openSeq) return;
  current.exists = true;
  conversation.showHistory(history.messages ?? [], record.turns ?? {});
  if (history.title) {
    // The server's title (made from the first exchange, or a rename).
    setTitle(history.title);
    store.updateSessionRecord(id, { title: history.title });
  } else if (!current.title) {
    const first = history.messages?.find((m) => m.role === 'user');
    if (first) {
      setTitle(store.titleFrom(first.content));
      store.updateSessionRecord(id, { title: current.title });
    }
  }
  showOptionsFor(current, record, history.system_prompt);
  resumePending(id, history.turn_count ?? 0);
}

// A reload interrupted an answer in this session: show it again as the
// server sends it (see resume.js). `storedTurns`: turns already shown.
async function resumePending(id, storedTurns) {
  const pending = pendingStream(id);
  if (!pending || streaming || current.id !== id) return;
  const userArticle = conversation.addUser(pending.message);
  const answer = conversation.addAssistant();
  const mine = { controller: new AbortController(), sessionId: id };
  streaming = mine;
  composer.setBusy(true);
  announce('Answer streaming…');
  try {
    const turn = await client.resumeStream((t) => answer.append(t),
      { sessionId: id, signal: mine.controller.signal });
    if (turn.turn_count <= storedTurns) {
      // It ended before the reload: the history shows it already.
      userArticle.remove();
      answer.article.remove();
    } else {
      answer.finish(turn);
      current.exists = true;
      sessions.upsert(id, current.title);
      branches.annotate();
    }
    announce(`Answer complete. ${describeTurn(turn)}`);
  } catch (e) {
    if (e.name === 'AbortError' || e.status === 499) answer.stopped(() => send(pending.message));
    else answer.failed(e, () => send(pending.message), openSettings);
  } finally {
    forgetStream(id);
    if (streaming === mine) {
      streaming = null;
      composer.setBusy(false);
    }
  }
}

function decodeHash() {
  const raw = location.hash.slice(1);
  if (!raw) return '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

// Opens the chat the URL names; a hash that is not a session id is shown,
// as text, and ignored.
function openFromHash() {
  const id = decodeHash();
  if (!id || id === current.id) return false;
  if (!store.SESSION_ID.test(id)) {
    newChat();
    showNotice(`Not a session id: ${id}`);
    return true;
  }
  openSession(id);
  return true;
}

window.addEventListener('hashchange', () => {
  if (!location.hash) newChat();
  else openFromHash();
});
$('new-chat').addEventListener('click', newChat);

// ---- sending -------------------------------------------------------------

function stopStreaming() {
  streaming?.controller.abort();
}

async function send(text) {
  if (streaming) return;
  hideNotice();
  const id = current.id;
  const first = !current.exists;
  let record = store.sessionRecord(id);
  let options;
  if (first) {
    options = readNewChatOptions();
    store.setNewChatDefaults(options);
    record = store.updateSessionRecord(id, {
      title: store.titleFrom(text), model: options.model, temperature: options.temperature,
    });
    if (!current.title) setTitle(record.title);
    // Listed at once, as the chat it is about to become; taken out again
    // if its first turn is not stored.
    sessions.upsert(id, record.title, { pending: true });
  } else {
    options = { model: record.model, temperature: record.temperature };
  }
  const userArticle = conversation.addUser(text);
  const answer = conversation.addAssistant();
  const mine = { controller: new AbortController(), sessionId: id };
  streaming = mine;
  composer.setBusy(true);
  announce('Answer streaming…');
  const retry = () => {
    if (streaming || current.id !== id) return;
    userArticle.remove();
    answer.article.remove();
    send(text);
  };
  rememberStream(id, text);
  try {
    const turn = await client.chatStream(text, (t) => answer.append(t),
      { ...options, signal: mine.controller.signal });
    answer.finish(turn);
    const limit = client.rateLimit;
    if (limit?.remainingRequests !== undefined) {
      answer.meta.textContent += ` · ${limit.remainingRequests} of ${limit.limitRequests} requests left this minute`;
    }
    current.exists = true;
    const turns = { ...(store.sessionRecord(id).turns ?? {}) };
    turns[turn.turn_count] = {
      model: turn.model, usage: turn.usage, cost_usd: turn.cost_usd, stop_reason: turn.stop_reason,
    };
    store.updateSessionRecord(id, { turns });
    sessions.upsert(id, current.title);
    if (first) showOptionsFor(current, store.sessionRecord(id), options.systemPrompt);
    announce(`Answer complete. ${describeTurn(turn)}`);
    branches.annotate();
  } catch (e) {
    if (first && !(current.id === id && current.exists)) sessions.remove(id);
    if (e.name === 'AbortError') {
      answer.stopped(retry);
      announce('Stopped. The reply was not saved.');
    } else {
      answer.failed(e, retry, openSettings);
      announce(describeError(e));
    }
  } finally {
    forgetStream(id);
    if (streaming === mine) {
      streaming = null;
      composer.setBusy(false);
    }
  }
}

// Edit / Regenerate / ‹ 2/3 › (branches.js), sharing the one reply that
// may stream at a time.
const branches = new Branches({
  client,
  conversation,
  begin: () => {
    if (streaming) return null;
    hideNotice();
    streaming = { controller: new AbortController(), sessionId: current.id };
    composer.setBusy(true);
    return streaming;
  },
  end: (mine) => {
    if (streaming !== mine) return;
    streaming = null;
    composer.setBusy(false);
  },
  turns: () => store.sessionRecord(current.id).turns ?? {},
  onError: (e) => showNotice(describeError(e), e.status === 401 ? keyAction() : undefined),
  announce,
});
conversation.decorate = (article, m) => branches.decorate(article, m);

const composer = new Composer({
  form: $('composer'),
  input: $('message'),
  send: $('send'),
  stop: $('stop'),
  onSend: send,
  onStop: stopStreaming,
});

$('conversation').addEventListener('click', (event) => {
  const button = event.target.closest('button.copy-code');
  if (button) copyCode(button);
});

document.addEventListener('keydown', (event) => {
  // Ctrl+Shift+O (Cmd+Shift+O): a new chat, as in ChatGPT.
  if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === 'o') {
    event.preventDefault();
    newChat();
    return;
  }
  if (event.key !== 'Escape' || document.querySelector('dialog[open]')) return;
  if (streaming) {
    event.preventDefault();
    stopStreaming();
    composer.focus();
  } else if (sidebarOpen()) {
    closeSidebar();
  }
});

// ---- deleting ------------------------------------------------------------

function confirmDelete(id, title) {
  const dialog = $('confirm-delete');
  $('confirm-delete-name').textContent = title;
  dialog.returnValue = '';
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'delete') {
      sessions.item(id)?.querySelector('.delete-session')?.focus();
      return;
    }
    const next = sessions.neighbourLink(id);
    try {
      await client.deleteSession({ sessionId: id });
    } catch (e) {
      showNotice(`Could not delete “${title}”. ${describeError(e)}`,
        e.status === 401 ? keyAction() : undefined);
      return;
    }
    sessions.remove(id);
    store.forgetSession(id);
    announce(`Deleted “${title}”.`);
    if (id === current.id) newChat();
    (next ?? $('new-chat')).focus();
  }, { once: true });
  dialog.showModal();
}

// ---- API key -------------------------------------------------------------

function openSettings() {
  $('api-key').value = store.apiKey();
  $('settings').showModal();
  $('api-key').focus();
}

function applyKey(key) {
  store.setApiKey(key);
  client.apiKey = key || undefined;
  hideNotice();
  sessions.load();
  if (current.exists || !conversation.element.querySelector('.message')) openSession(current.id);
}

$('open-settings').addEventListener('click', openSettings);
$('cancel-settings').addEventListener('click', () => $('settings').close('cancel'));
$('clear-key').addEventListener('click', () => {
  $('settings').close('clear');
  applyKey('');
});
$('settings').addEventListener('close', () => {
  if ($('settings').returnValue === 'save') applyKey($('api-key').value.trim());
  $('settings').returnValue = '';
});

// ---- start ---------------------------------------------------------------

if (!openFromHash()) {
  const last = store.currentSession();
  if (last) openSession(last);
  else newChat();
}
sessions.load();
composer.focus();
