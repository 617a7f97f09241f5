// The sidebar's search box and in-place renaming of conversations.
//
// Search: as the user types (after a short pause) or presses Enter, the
// caller's messages are searched (ChatClient.searchMessages) and the hits
// replace the conversation list until the box is emptied or Esc is pressed.
// Each hit links to its conversation (#session-id, which the app opens) and
// shows its snippet. A snippet is the user's own text: it is built from text
// nodes and <mark> elements only, never parsed as HTML, so markup in a
// message stays inert.
//
// Rename: double-click a conversation's title, or press F2 on it, to edit
// it in place; Enter saves (ChatClient.updateSession), Esc cancels.
import { splitSnippet } from '/js/chat-client.js';

const SEARCH_DELAY_MS = 250;
const PAGE_SIZE = 20;

// `snippet` as a fragment of text nodes and <mark> elements.
export function renderSnippet(snippet) {
  const fragment = document.createDocumentFragment();
  for (const part of splitSnippet(snippet)) {
    if (part.match) {
      const mark = document.createElement('mark');
      mark.textContent = part.text;
      fragment.append(mark);
    } else {
      fragment.append(document.createTextNode(part.text));
    }
  }
  return fragment;
}

export class SearchBox {
  // `client`: a ChatClient. `input`: the search field; `results`: the list
  // hits go in; `sessions`: the element hidden while results show;
  // `status`: a line for counts and errors; `more`: a "more results"
  // button. `onOpen(id)`: a hit was chosen (after its link navigates).
  constructor({ client, input, results, sessions, status, more, onOpen }) {
    this.client = client;
    this.input = input;
    this.results = results;
    this.sessions = sessions;
    this.status = status;
    this.more = more;
    this.onOpen = onOpen;
    this.timer = 0;
    this.seq = 0;
    this.query = '';
    this.nextPageToken = '';
    input.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.search(), SEARCH_DELAY_MS);
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        clearTimeout(this.timer);
        this.search();
      } else if (event.key === 'Escape' && input.value) {
        event.preventDefault();
        event.stopPropagation();
        input.value = '';
        this.search();
      }
    });
    more.addEventListener('click', () => this.search({ append: true }));
    results.addEventListener('click', (event) => {
      const link = event.target.closest('a.search-hit');
      if (link) this.onOpen?.(link.dataset.id);
    });
  }

  showing() {
    return !this.results.hidden;
  }

  close() {
    this.seq += 1;
    this.query = '';
    this.results.replaceChildren();
    this.results.hidden = true;
    this.more.hidden = true;
    this.status.hidden = true;
    this.status.textContent = '';
    this.sessions.hidden = false;
  }

  async search({ append = false } = {}) {
    const query = this.input.value.trim();
    if (!query) {
      this.close();
      return;
    }
    const seq = ++this.seq;
    let page;
    try {
      page = await this.client.searchMessages(query, {
        pageSize: PAGE_SIZE, pageToken: append ? this.nextPageToken : undefined,
      });
    } catch (e) {
      if (seq !== this.seq) return;
      this.showStatus(`Search failed: ${e.message || String(e)}`);
      return;
    }
    if (seq !== this.seq) return;  // A newer search has started.
    this.query = query;
    if (!append) this.results.replaceChildren();
    for (const hit of page.hits ?? []) this.results.append(this.makeHit(hit));
    this.nextPageToken = page.next_page_token ?? '';
    this.more.hidden = !this.nextPageToken;
    this.sessions.hidden = true;
    this.results.hidden = false;
    const count = this.results.children.length;
    this.showStatus(count === 0 ? `No messages match “${query}”.`
      : `${count}${this.nextPageToken ? '+' : ''} matching message${count === 1 ? '' : 's'}`);
  }

  showStatus(text) {
    this.status.textContent = text;
    this.status.hidden = false;
  }

  makeHit(hit) {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.className = 'search-hit';
    link.dataset.id = hit.session_id ?? '';
    link.dataset.index = String(hit.message_index ?? 0);
    link.href = `#${encodeURIComponent(hit.session_id ?? '')}`;
    const title = document.createElement('span');
    title.className = 'search-hit-title';
    title.textContent = hit.session_title || hit.session_id || '';
    const snippet = document.createElement('span');
    snippet.className = 'search-hit-snippet';
    snippet.append(renderSnippet(hit.snippet));
    link.append(title, snippet);
    li.append(link);
    return li;
  }
}

// Lets the user rename conversations of `list` (the SessionList's <ul>) in
// place. `onRenamed(id, title)` runs after the server took the new title;
// `onError(error)` when it refused or failed.
export function enableRename({ client, list, onRenamed, onError }) {
  const start = (titleSpan) => {
    const li = titleSpan.closest('li');
    if (!li || li.querySelector('input.rename')) return;
    const link = li.querySelector('.session-link');
    const old = titleSpan.textContent;
    const input = document.createElement('input');
    input.className = 'rename';
    input.value = old;
    input.maxLength = 200;
    input.setAttribute('aria-label', 'Conversation title');
    link.hidden = true;
    li.prepend(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      input.remove();
      link.hidden = false;
      link.focus();
      if (!save || title === old) return;
      try {
        const answer = await client.updateSession({ sessionId: li.dataset.id, title });
        const saved = answer.session?.title ?? title;
        onRenamed?.(li.dataset.id, saved || li.dataset.id);
      } catch (e) {
        onError?.(e);
      }
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        finish(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener('blur', () => finish(true));
  };
  list.addEventListener('dblclick', (event) => {
    const title = event.target.closest('.session-link')?.querySelector('.session-title');
    if (!title) return;
    event.preventDefault();
    start(title);
  });
  list.addEventListener('keydown', (event) => {
    if (event.key !== 'F2') return;
    const title = event.target.closest('.session-link')?.querySelector('.session-title');
    if (!title) return;
    event.preventDefault();
    start(title);
  });
}
