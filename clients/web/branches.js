// Edit and regenerate, as branches: "Edit" under each user message,
// "Regenerate" under each answer, and "‹ 2/3 ›" where a turn has several
// versions (GetHistory's sibling_turn_ids). An edit or a regeneration
// streams in like any reply (ChatStream with edit_turn_id /
// regenerate_turn_id); the old version stays on the server, one click away.
// Server text reaches the page only through textContent.

function button(label, className, onClick, ariaLabel) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `secondary ${className}`;
  b.textContent = label;
  if (ariaLabel) b.setAttribute('aria-label', ariaLabel);
  b.addEventListener('click', onClick);
  return b;
}

export class Branches {
  // client: the ChatClient (its sessionId is the open chat's).
  // conversation: the Conversation pane.
  // begin(): a {controller} for a new streaming reply, or null while one
  //   streams; end(it) when that reply is over.
  // turns(): this browser's usage records of the open chat (by turn count).
  // onError(e), announce(text): how the app reports.
  constructor({ client, conversation, begin, end, turns, onError, announce }) {
    this.client = client;
    this.conversation = conversation;
    this.begin = begin;
    this.end = end;
    this.turns = turns;
    this.onError = onError;
    this.announce = announce;
  }

  // Adds the controls to `article`, which shows message `m` of a history.
  decorate(article, m) {
    if (!m.turn_id) return;
    article.dataset.turnId = String(m.turn_id);
    article.querySelector('.branch-actions')?.remove();
    const actions = document.createElement('div');
    actions.className = 'branch-actions';
    if (m.role === 'user') {
      actions.append(button('Edit', 'edit-message', () => this.startEdit(article, m),
        'Edit this message'));
    } else {
      const siblings = m.sibling_turn_ids ?? [];
      if (siblings.length > 1) actions.append(this.switcher(m, siblings));
      actions.append(button('Regenerate', 'regenerate', () => this.regenerate(article, m.turn_id),
        'Regenerate this answer'));
    }
    article.append(actions);
  }

  // "‹ 2/3 ›": the versions of a turn, the shown one counted from 1.
  switcher(m, siblings) {
    const index = m.sibling_index ?? siblings.indexOf(m.turn_id);
    const box = document.createElement('span');
    box.className = 'branch-switcher';
    const prev = button('‹', 'branch-prev', () => this.switchTo(siblings[index - 1]), 'Previous version');
    const next = button('›', 'branch-next', () => this.switchTo(siblings[index + 1]), 'Next version');
    prev.disabled = index <= 0;
    next.disabled = index >= siblings.length - 1;
    const label = document.createElement('span');
    label.className = 'branch-position';
    label.textContent = `${index + 1}/${siblings.length}`;
    label.setAttribute('aria-label', `Version ${index + 1} of ${siblings.length}`);
    box.append(prev, label, next);
    return box;
  }

  // After a reply streamed in the usual way: gives the shown messages their
  // turn ids and controls, without redrawing them.
  async annotate() {
    const id = this.client.sessionId;
    let history;
    try {
      history = await this.client.getHistory();
    } catch {
      return;  // Controls come with the next load; nothing is lost.
    }
    if (this.client.sessionId !== id) return;
    const articles = [...this.conversation.element.querySelectorAll('.message')];
    const messages = history.messages ?? [];
    if (articles.length !== messages.length) return;
    articles.forEach((article, i) => this.decorate(article, messages[i]));
  }

  // Shows `history` (GetHistory's or SwitchBranch's answer).
  show(history) {
    this.conversation.showHistory(history.messages ?? [], this.turns());
  }

  async switchTo(turnId) {
    if (turnId === undefined) return;
    const mine = this.begin();
    if (!mine) return;
    try {
      this.show(await this.client.switchBranch(turnId));
      this.announce('Showing another version.');
    } catch (e) {
      this.onError(e);
    } finally {
      this.end(mine);
    }
  }

  // The articles from `article` to the end: what an edit or a regeneration
  // of its turn replaces on screen.
  dropFrom(article) {
    let node = article;
    while (node) {
      const next = node.nextElementSibling;
      node.remove();
      node = next;
    }
  }

  async regenerate(article, turnId) {
    const mine = this.begin();
    if (!mine) return;
    this.dropFrom(article);
    const answer = this.conversation.addAssistant();
    await this.stream(mine, answer, (onChunk, options) =>
      this.client.regenerateStream(onChunk, { ...options, turnId }));
  }

  // Replaces the message's text with a box to edit it in.
  startEdit(article, m) {
    if (article.querySelector('.edit-box')) return;
    const content = article.querySelector('.content');
    const form = document.createElement('form');
    form.className = 'edit-box';
    const input = document.createElement('textarea');
    input.className = 'edit-input';
    input.value = m.content;
    input.rows = Math.min(8, Math.max(2, m.content.split('\n').length));
    input.setAttribute('aria-label', 'Edited message');
    const save = document.createElement('button');
    save.type = 'submit';
    save.className = 'save-edit';
    save.textContent = 'Send';
    const cancel = button('Cancel', 'cancel-edit', () => {
      form.remove();
      content.hidden = false;
      actions.hidden = false;
    });
    const actions = article.querySelector('.branch-actions');
    form.append(input, save, cancel);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text || text === m.content) return;
      this.edit(article, m.turn_id, text);
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      } else if (event.key === 'Escape') {
        event.stopPropagation();
        cancel.click();
      }
    });
    content.hidden = true;
    if (actions) actions.hidden = true;
    article.append(form);
    input.focus();
  }

  async edit(article, turnId, text) {
    const mine = this.begin();
    if (!mine) return;
    this.dropFrom(article);
    this.conversation.addUser(text);
    const answer = this.conversation.addAssistant();
    await this.stream(mine, answer, (onChunk, options) =>
      this.client.editMessageStream(turnId, text, onChunk, options));
  }

  // Streams the new version into `answer`, then shows the stored branch.
  async stream(mine, answer, call) {
    this.announce('Answer streaming…');
    try {
      const turn = await call((t) => answer.append(t), { signal: mine.controller.signal });
      answer.finish(turn);
      this.end(mine);
      this.announce('Answer complete. The previous version is kept.');
      await this.annotate();
    } catch (e) {
      this.end(mine);
      if (e.name === 'AbortError') {
        answer.stopped(() => this.reload());
        this.announce('Stopped. The reply was not saved.');
      } else {
        answer.failed(e, () => this.reload(), null);
        this.announce(e.message || String(e));
      }
    }
  }

  // Back to what the server has (after a failed or stopped edit).
  async reload() {
    try {
      this.show(await this.client.getHistory());
    } catch (e) {
      this.onError(e);
    }
  }
}
