// The sidebar: the caller's sessions, most recent first, each with its
// title and a delete button. The server's title (made from the first
// exchange, or a rename) comes first; without one, this browser's record of
// the first message; a session started elsewhere (another browser,
// chat-cli) is then titled from its history, read once and remembered.
import { sessionRecord, updateSessionRecord, titleFrom, SESSION_ID } from './store.js';

const PAGE_SIZE = 100;
const TITLE_FETCHES_AT_ONCE = 3;

export class SessionList {
  // `client`: a ChatClient. `onDelete(id, title)`: the user asked to delete.
  // `onError(error)`: listing failed.
  constructor({ client, list, empty, more, onDelete, onError }) {
    this.client = client;
    this.list = list;
    this.empty = empty;
    this.more = more;
    this.onDelete = onDelete;
    this.onError = onError;
    this.current = '';
    this.nextPageToken = '';
    this.titleQueue = [];
    this.titleFetches = 0;
    // Chats listed before the server has them (first reply streaming):
    // id -> title, kept through a reload of the list.
    this.pending = new Map();
    more.addEventListener('click', () => this.load({ append: true }));
    list.addEventListener('click', (event) => {
      const button = event.target.closest('button.delete-session');
      if (!button) return;
      const item = button.closest('li');
      this.onDelete(item.dataset.id, this.titleOf(item));
    });
  }

  titleOf(item) {
    return item.querySelector('.session-title').textContent;
  }

  // Reads the first page again (or the next one, with `append`).
  async load({ append = false } = {}) {
    let page;
    try {
      page = await this.client.listSessions({
        pageSize: PAGE_SIZE, pageToken: append ? this.nextPageToken : undefined,
      });
    } catch (e) {
      this.onError?.(e);
      return;
    }
    if (!append) this.list.replaceChildren();
    for (const s of page.sessions ?? []) {
      if (!SESSION_ID.test(s.session_id ?? '') || this.item(s.session_id)) continue;
      this.list.append(this.makeItem(s.session_id, s.turns, s.title));
    }
    if (!append) {
      for (const [id, title] of [...this.pending].reverse()) {
        if (!this.item(id)) this.list.prepend(this.makeItem(id, 1, title));
      }
    }
    this.nextPageToken = page.next_page_token ?? '';
    this.more.hidden = !this.nextPageToken;
    this.update();
  }

  item(id) {
    for (const li of this.list.children) if (li.dataset.id === id) return li;
    return null;
  }

  makeItem(id, turns, knownTitle = '') {
    const li = document.createElement('li');
    li.dataset.id = id;
    const link = document.createElement('a');
    link.className = 'session-link';
    link.href = `#${encodeURIComponent(id)}`;
    const title = document.createElement('span');
    title.className = 'session-title';
    link.append(title);
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'delete-session';
    del.textContent = '×';
    li.append(link, del);
    const known = knownTitle || sessionRecord(id).title;
    if (known) this.setTitle(li, known);
    else {
      this.setTitle(li, turns === 0 ? 'Empty chat' : id);
      // Once the item is in the list (fetches skip items no longer there).
      if (turns !== 0) queueMicrotask(() => this.queueTitle(li));
    }
    return li;
  }

  setTitle(li, text) {
    li.querySelector('.session-title').textContent = text;
    li.querySelector('.delete-session').setAttribute('aria-label', `Delete “${text}”`);
    li.querySelector('.session-link').title = text;
  }

  queueTitle(li) {
    this.titleQueue.push(li);
    this.pumpTitles();
  }

  pumpTitles() {
    while (this.titleFetches < TITLE_FETCHES_AT_ONCE && this.titleQueue.length) {
      const li = this.titleQueue.shift();
      if (!li.isConnected) continue;
      this.titleFetches += 1;
      this.client.getHistory({ sessionId: li.dataset.id })
        .then((history) => {
          const first = history.messages?.find((m) => m.role === 'user');
          if (!first) return;
          const title = titleFrom(first.content);
          updateSessionRecord(li.dataset.id, { title });
          this.setTitle(li, title);
        })
        .catch(() => {})  // Deleted meanwhile, or no key: keep the id.
        .finally(() => {
          this.titleFetches -= 1;
          this.pumpTitles();
        });
    }
  }

  // Puts session `id` at the top (it just had a turn), titled `title`;
  // `pending` while its first turn is not stored yet.
  upsert(id, title, { pending = false } = {}) {
    if (pending) this.pending.set(id, title);
    else this.pending.delete(id);
    const li = this.item(id) ?? this.makeItem(id, 1, title);
    if (title) this.setTitle(li, title);
    this.list.prepend(li);
    this.update();
  }

  // Shows `title` for session `id` where it is listed, without moving it.
  upsertTitle(id, title) {
    const li = this.item(id);
    if (li) this.setTitle(li, title);
  }

  remove(id) {
    this.pending.delete(id);
    this.item(id)?.remove();
    this.update();
  }

  // The item to focus after `id` goes: the next one, else the previous.
  neighbourLink(id) {
    const li = this.item(id);
    const other = li?.nextElementSibling ?? li?.previousElementSibling;
    return other?.querySelector('.session-link') ?? null;
  }

  setCurrent(id) {
    this.current = id;
    this.update();
  }

  update() {
    for (const li of this.list.children) {
      const link = li.querySelector('.session-link');
      if (li.dataset.id === this.current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    this.empty.hidden = this.list.children.length > 0;
  }
}
