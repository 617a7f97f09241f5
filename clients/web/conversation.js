// The conversation pane: user messages as plain text, the assistant's as
// sanitized markdown (streamed in, re-rendered at most once a frame), the
// usage and cost under each answer, and errors with a Retry button. Server
// text only ever reaches the page through textContent or renderMarkdown().
import { renderMarkdown } from './markdown.js';

function formatCost(usd) {
  if (usd === 0) return '$0';
  if (usd < 0.0001) return '<$0.0001';
  return `$${usd < 0.01 ? usd.toFixed(4) : usd.toFixed(3)}`;
}

// "claude-sonnet-4-6 · 12 in / 40 out tokens · $0.0006" for a `done` event
// (or the record kept of one).
export function describeTurn(turn) {
  const parts = [];
  if (turn.model) parts.push(turn.model);
  const usage = turn.usage;
  if (usage) parts.push(`${usage.input_tokens ?? 0} in / ${usage.output_tokens ?? 0} out tokens`);
  // Absent cost means the model has no price (unknown, not free).
  if (typeof turn.cost_usd === 'number') parts.push(formatCost(turn.cost_usd));
  if (turn.stop_reason && turn.stop_reason !== 'end_turn') parts.push(`stopped: ${turn.stop_reason}`);
  if (turn.truncated_turns) parts.push(`${turn.truncated_turns} earlier turns left out of the prompt`);
  return parts.join(' · ');
}

class AssistantMessage {
  constructor(conversation, article) {
    this.conversation = conversation;
    this.article = article;
    this.body = article.querySelector('.content');
    this.meta = article.querySelector('.meta');
    this.text = '';
    this.frame = 0;
  }

  append(text) {
    this.text += text;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    const stick = this.conversation.nearBottom();
    renderMarkdown(this.body, this.text);
    if (stick) this.conversation.scrollToBottom();
  }

  settle() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.article.removeAttribute('aria-busy');
    this.article.classList.remove('streaming');
  }

  // The turn was stored: `turn` is the stream's `done` event.
  finish(turn) {
    this.settle();
    this.text = turn.response ?? this.text;
    this.render();
    this.meta.textContent = describeTurn(turn);
  }

  // The user stopped the reply; the server stored nothing.
  stopped(onRetry) {
    this.settle();
    this.render();
    this.article.classList.add('cancelled');
    this.notice('Stopped. This reply was not saved.', onRetry, false);
  }

  // The call failed with `error` (a ChatError or a network TypeError).
  failed(error, onRetry, onSetKey) {
    this.settle();
    if (this.text) this.render();
    else this.body.replaceChildren();
    this.article.classList.add('failed');
    const status = error.status ? `Error ${error.status}: ` : 'Error: ';
    let message = status + (error.message || String(error));
    if (error.retryAfter) message += ` (try again in ${error.retryAfter} s)`;
    this.notice(message, onRetry, error.status === 401 ? onSetKey : null, true);
  }

  notice(text, onRetry, onSetKey, isError = false) {
    const box = document.createElement('div');
    box.className = isError ? 'turn-error' : 'turn-stopped';
    if (isError) box.setAttribute('role', 'alert');
    const p = document.createElement('p');
    p.textContent = text;
    box.append(p);
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'retry';
    retry.textContent = 'Retry';
    retry.addEventListener('click', onRetry);
    box.append(retry);
    if (onSetKey) {
      const setKey = document.createElement('button');
      setKey.type = 'button';
      setKey.className = 'secondary set-key';
      setKey.textContent = 'Set API key';
      setKey.addEventListener('click', onSetKey);
      box.append(setKey);
    }
    this.meta.replaceChildren(box);
    this.conversation.scrollToBottom();
  }
}

export class Conversation {
  constructor(element, welcome) {
    this.element = element;
    this.welcome = welcome;
  }

  nearBottom() {
    const e = this.element;
    return e.scrollHeight - e.scrollTop - e.clientHeight < 80;
  }

  scrollToBottom() {
    this.element.scrollTop = this.element.scrollHeight;
  }

  clear() {
    this.element.replaceChildren(this.welcome);
    this.welcome.hidden = false;
  }

  article(role) {
    this.welcome.hidden = true;
    const article = document.createElement('article');
    article.className = `message ${role}`;
    const who = document.createElement('h3');
    who.className = 'visually-hidden';
    who.textContent = role === 'user' ? 'You said:' : 'Assistant:';
    const content = document.createElement('div');
    content.className = role === 'user' ? 'content' : 'content markdown';
    article.append(who, content);
    if (role === 'assistant') {
      const meta = document.createElement('div');
      meta.className = 'meta';
      article.append(meta);
    }
    this.element.append(article);
    return article;
  }

  addUser(text) {
    const article = this.article('user');
    article.querySelector('.content').textContent = text;
    this.scrollToBottom();
    return article;
  }

  // An answer about to stream in; aria-busy keeps screen readers from
  // reading every word until it is complete.
  addAssistant() {
    const article = this.article('assistant');
    article.setAttribute('aria-busy', 'true');
    article.classList.add('streaming');
    this.scrollToBottom();
    return new AssistantMessage(this, article);
  }

  // A stored history: [{role, content}], with `turns[N]` the usage kept of
  // the N-th turn (1-based), when this browser streamed it. `decorate`, when
  // set, adds a message's controls to its article (branches.js).
  showHistory(messages, turns = {}) {
    this.clear();
    let turn = 0;
    for (const m of messages) {
      if (m.role === 'user') {
        turn += 1;
        this.decorate?.(this.addUser(m.content), m);
      } else {
        const answer = this.addAssistant();
        answer.settle();
        answer.text = m.content;
        answer.render();
        const kept = turns[turn];
        if (kept && typeof kept === 'object') answer.meta.textContent = describeTurn(kept);
        this.decorate?.(answer.article, m);
      }
    }
    this.scrollToBottom();
  }
}
